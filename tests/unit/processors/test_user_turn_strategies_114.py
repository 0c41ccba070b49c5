"""The 1.14 user aggregator driven by its turn strategies: proposals from a service with its
own turn detection, strategies a service recommends, the STT's latency, typed input and the
wake phrase. Runs on virtual time (:func:`run_virtual`)."""

from __future__ import annotations

from callpipe.audio.vad.vad_analyzer import VADParams
from callpipe.frames.frames import (
    BotInterruptionFrame,
    BotStartedSpeakingFrame,
    Frame,
    InputTextRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMContextFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    ServiceMetadataFrame,
    STTMetadataFrame,
    TextFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_clock import run_virtual
from callpipe.turns.user_start import WakePhraseUserTurnStartStrategy
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies, UserTurnStrategies

from .test_user_turn_timeouts import PARAMS, ScriptedVAD, loud


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, user_id="caller", timestamp="")


def run(user: LLMUserAggregator, frames: list[Frame]) -> tuple[list[Frame], list[Frame]]:
    async def main() -> tuple[list[Frame], list[Frame]]:
        return await run_test(user, frames)

    return run_virtual(main())


def user_texts(context: LLMContext) -> list[str]:
    return [str(m["content"]) for m in context.messages if m["role"] == "user"]  # type: ignore[index]


def count(frames: list[Frame], cls: type[Frame]) -> int:
    return sum(isinstance(f, cls) for f in frames)


def proposed_turn(text: str) -> list[Frame]:
    return [
        BotStartedSpeakingFrame(),
        ProposedUserStartedSpeakingFrame(),
        said(text),
        ProposedUserStoppedSpeakingFrame(),
        SleepFrame(1),
    ]


def external(**kwargs: bool) -> LLMUserAggregatorParams:
    return LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies(**kwargs))


# ---------------------------------------------------------------------- proposals


def test_external_strategies_decide_proposed_turns_and_interrupt_the_bot() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context, params=external())
    started: list[object] = []
    user.add_event_handler("on_user_turn_started", lambda agg, strategy: started.append(strategy))
    down, up = run(user, proposed_turn("hi there"))
    assert user_texts(context) == ["hi there"]
    assert count(down, LLMContextFrame) == 1
    # The proposals are consumed and the turn announced both ways.
    assert count(down, ProposedUserStartedSpeakingFrame) == 0
    assert count(down, ProposedUserStoppedSpeakingFrame) == 0
    assert count(down, UserStartedSpeakingFrame) == 1 and count(down, UserStoppedSpeakingFrame) == 1
    assert count(up, UserStartedSpeakingFrame) == 1 and count(up, UserStoppedSpeakingFrame) == 1
    assert count(up, BotInterruptionFrame) == 1
    assert len(started) == 1


def test_external_strategies_without_interruptions_leave_the_bot_talking() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context, params=external(enable_interruptions=False))
    _, up = run(user, proposed_turn("hi there"))
    assert user_texts(context) == ["hi there"]
    assert count(up, BotInterruptionFrame) == 0


def test_without_an_external_strategy_proposals_pass_on_undecided() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    down, up = run(user, proposed_turn("hi there")[:2] + [ProposedUserStoppedSpeakingFrame()])
    assert count(down, ProposedUserStartedSpeakingFrame) == 1
    assert count(down, ProposedUserStoppedSpeakingFrame) == 1
    assert count(down, UserStartedSpeakingFrame) == 0
    assert count(up, BotInterruptionFrame) == 0


async def test_with_external_strategies_the_aggregators_vad_starts_no_turn() -> None:
    for strategies, turns in ((ExternalUserTurnStrategies(), 0), (UserTurnStrategies(), 1)):
        vad = ScriptedVAD(params=VADParams(start_secs=0.1, stop_secs=0.2, min_volume=0.0))
        params = LLMUserAggregatorParams(vad_analyzer=vad, user_turn_strategies=strategies)
        user = LLMUserAggregator(LLMContext(), params=params)
        down, up = await run_test(user, loud(0.3), params=PARAMS)
        assert count(down, VADUserStartedSpeakingFrame) == 1
        assert count(down, UserStartedSpeakingFrame) == turns
        assert count(up, BotInterruptionFrame) == turns


# ---------------------------------------------------------------------- service metadata


def test_strategies_a_service_recommends_are_adopted() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    recommended = ExternalUserTurnStrategies()
    frames: list[Frame] = [
        ServiceMetadataFrame(service_name="flux", user_turn_strategies=recommended),
        *proposed_turn("hello"),
    ]
    down, up = run(user, frames)
    assert user.user_turn_strategies is recommended
    assert user_texts(context) == ["hello"]
    assert count(up, BotInterruptionFrame) == 1
    assert count(down, ServiceMetadataFrame) == 1  # passed on for the processors after


def test_the_bots_own_strategies_win_over_a_recommendation() -> None:
    context = LLMContext()
    own = UserTurnStrategies()
    user = LLMUserAggregator(context, params=LLMUserAggregatorParams(user_turn_strategies=own))
    frames: list[Frame] = [
        ServiceMetadataFrame(
            service_name="flux", user_turn_strategies=ExternalUserTurnStrategies()
        ),
        *proposed_turn("hello"),
    ]
    down, _ = run(user, frames)
    assert user.user_turn_strategies is own
    assert count(down, ProposedUserStartedSpeakingFrame) == 1  # undecided, passed on
    assert count(down, UserStartedSpeakingFrame) == 0


def late_final(metadata: list[Frame]) -> list[Frame]:
    """The caller stops with only an interim; the final comes 1 s after the stop."""
    return [
        *metadata,
        UserStartedSpeakingFrame(),
        InterimTranscriptionFrame("what is", user_id="caller", timestamp=""),
        VADUserStoppedSpeakingFrame(stop_secs=0.2),
        UserStoppedSpeakingFrame(),
        SleepFrame(1),
        said("what is the time"),
        SleepFrame(3),
    ]


def test_the_stt_latency_stretches_the_wait_for_a_late_final_transcript() -> None:
    slow, plain = LLMContext(), LLMContext()
    run(LLMUserAggregator(slow), late_final([STTMetadataFrame("stt", ttfs_p99_latency=1.5)]))
    run(LLMUserAggregator(plain), late_final([]))
    # 1.5 s p99 - 0.2 s already waited by the VAD: the final at 1 s is still in time.
    assert user_texts(slow) == ["what is the time"]
    # Without it the 0.5 s wait runs out and the interim stands in for the final.
    assert user_texts(plain)[0] == "what is"


# ---------------------------------------------------------------------- typed input


def test_typed_input_is_a_user_turn_that_runs_the_llm_and_is_never_spoken() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    events: list[str] = []
    user.add_event_handler("on_user_turn_started", lambda agg, s: events.append("started"))
    user.add_event_handler("on_user_turn_stopped", lambda agg, s, m: events.append(m.content))
    down, _ = run(user, [InputTextRawFrame(" book a table "), SleepFrame(1)])
    assert user_texts(context) == ["book a table"]
    assert count(down, LLMContextFrame) == 1
    assert not [f for f in down if isinstance(f, TextFrame)]
    assert events == ["started", "book a table"]


# ---------------------------------------------------------------------- wake phrase


def spoken(text: str) -> list[Frame]:
    return [UserStartedSpeakingFrame(), said(text), UserStoppedSpeakingFrame(), SleepFrame(1)]


def wake_params(**kwargs: float | bool) -> LLMUserAggregatorParams:
    wake = WakePhraseUserTurnStartStrategy(phrases=["hey robot"], **kwargs)  # type: ignore[arg-type]
    return LLMUserAggregatorParams(user_turn_strategies=UserTurnStrategies(start=[wake]))


def test_nothing_is_heard_before_the_wake_phrase() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context, params=wake_params())
    frames = [
        BotStartedSpeakingFrame(),
        UserStartedSpeakingFrame(),
        InterruptionFrame(),
        said("what time is it"),
        UserStoppedSpeakingFrame(),
        SleepFrame(1),
        *spoken("Hey, Robot! What time is it?"),
        *spoken("and the date?"),
    ]
    down, _ = run(user, frames)
    assert user_texts(context) == ["Hey, Robot! What time is it?", "and the date?"]
    assert count(down, InterruptionFrame) == 0  # no barge-in while asleep


def test_the_wake_phrase_wears_off_after_the_timeout() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context, params=wake_params(timeout=5.0))
    down, _ = run(user, [*spoken("hey robot hello"), SleepFrame(6), *spoken("still there?")])
    assert user_texts(context) == ["hey robot hello"]


def test_single_activation_needs_the_phrase_for_every_turn() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context, params=wake_params(single_activation=True))
    frames = [*spoken("hey robot hello"), *spoken("again"), *spoken("hey robot bye")]
    run(user, frames)
    assert user_texts(context) == ["hey robot hello", "hey robot bye"]
