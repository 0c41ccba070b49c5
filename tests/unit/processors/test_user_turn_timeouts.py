"""The 1.14 user aggregator's empty-turn answer, turn stop timeout and audio idle timeout.

The turn tests run on virtual time (:func:`run_virtual`), so the 1.14 defaults (a 5 s stop
timeout) cost nothing; the audio idle test runs on the real clock, which the VAD controller
stamps the audio with.
"""

from __future__ import annotations

import asyncio

from callpipe.audio.turn.base_turn_analyzer import EndOfTurnState
from callpipe.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from callpipe.audio.vad.vad_analyzer import VADAnalyzer, VADParams
from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    FunctionCallFromLLM,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
    UserTurnStoppedMessage,
)
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_clock import run_virtual
from callpipe.turns.empty_user_turn import (
    DEFAULT_EMPTY_USER_TURN_INTERRUPTED_PROMPT,
    EmptyUserTurnConfig,
)
from callpipe.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from callpipe.turns.user_turn_strategies import (
    SpeechTimeoutUserTurnStopStrategy,
    UserTurnStrategies,
)

from ..turns.test_turn_analyzer_stop import ScriptedAnalyzer

PROMPT = DEFAULT_EMPTY_USER_TURN_INTERRUPTED_PROMPT
PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, user_id="caller", timestamp="")


def noise_cutting_in() -> list[Frame]:
    """The bot is answering; a cough cuts it off and nothing is transcribed."""
    return [
        BotStartedSpeakingFrame(),
        UserStartedSpeakingFrame(),
        InterruptionFrame(),
        BotStoppedSpeakingFrame(),
        UserStoppedSpeakingFrame(),
        SleepFrame(6),  # past the default 5 s stop timeout
    ]


def noise_while_waiting() -> list[Frame]:
    """The bot finished and waits; a cough, nothing transcribed."""
    return [
        BotStartedSpeakingFrame(),
        BotStoppedSpeakingFrame(),
        SleepFrame(1),
        UserStartedSpeakingFrame(),
        UserStoppedSpeakingFrame(),
        SleepFrame(6),
    ]


def words(text: str) -> list[Frame]:
    return [UserStartedSpeakingFrame(), said(text), UserStoppedSpeakingFrame(), SleepFrame(1)]


class Recorded:
    def __init__(self, user: LLMUserAggregator) -> None:
        self.events: list[str] = []
        self.stopped: list[tuple[object, UserTurnStoppedMessage]] = []
        user.add_event_handler(
            "on_user_turn_stop_timeout", lambda agg: self.events.append("stop_timeout")
        )
        user.add_event_handler("on_user_turn_stopped", self._on_stopped)

    def _on_stopped(self, agg: object, strategy: object, message: UserTurnStoppedMessage) -> None:
        self.events.append("stopped")
        self.stopped.append((strategy, message))


def run(user: LLMUserAggregator, frames: list[Frame]) -> list[Frame]:
    async def main() -> list[Frame]:
        down, _ = await run_test(user, frames)
        return down

    return run_virtual(main())


def llm_runs(down: list[Frame]) -> int:
    return sum(isinstance(f, LLMContextFrame) for f in down)


def roles_and_texts(context: LLMContext) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in context.messages]  # type: ignore[index]


# ---------------------------------------------------------------------- empty user turns


def test_an_empty_turn_that_cut_the_bot_off_runs_the_llm_once_with_the_prompt() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    seen = Recorded(user)
    down = run(user, noise_cutting_in())
    assert llm_runs(down) == 1
    assert roles_and_texts(context) == [("system", PROMPT)]
    # As in 1.14, the empty turn ends at the stop timeout, which reports it first.
    assert seen.events == ["stop_timeout", "stopped"]
    [(strategy, message)] = seen.stopped
    assert strategy is None and message.content == ""


def test_a_turn_before_the_bot_first_finished_counts_as_interrupting() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    down = run(user, [UserStartedSpeakingFrame(), UserStoppedSpeakingFrame(), SleepFrame(6)])
    assert llm_runs(down) == 1
    assert roles_and_texts(context) == [("system", PROMPT)]


def test_a_second_empty_turn_in_a_row_is_not_answered() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    down = run(user, [*noise_cutting_in(), *noise_cutting_in()])
    assert llm_runs(down) == 1
    assert roles_and_texts(context) == [("system", PROMPT)]


def test_max_consecutive_recoveries_is_configurable() -> None:
    context = LLMContext()
    config = EmptyUserTurnConfig(interrupted_prompt="again?", max_consecutive_recoveries=2)
    user = LLMUserAggregator(context, params=LLMUserAggregatorParams(empty_user_turn=config))
    down = run(user, [*noise_cutting_in(), *noise_cutting_in(), *noise_cutting_in()])
    assert llm_runs(down) == 2
    assert roles_and_texts(context) == [("system", "again?"), ("system", "again?")]


def test_a_transcribed_turn_resets_the_count() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    down = run(user, [*noise_cutting_in(), *words("hello"), *noise_cutting_in()])
    assert llm_runs(down) == 3
    assert roles_and_texts(context) == [
        ("system", PROMPT),
        ("user", "hello"),
        ("system", PROMPT),
    ]


def test_an_empty_turn_while_the_bot_waits_gets_no_answer() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    seen = Recorded(user)
    down = run(user, noise_while_waiting())
    assert llm_runs(down) == 0
    assert context.messages == []
    assert seen.events == ["stop_timeout", "stopped"]


def test_an_idle_prompt_answers_an_empty_turn_while_the_bot_waits() -> None:
    context = LLMContext()
    config = EmptyUserTurnConfig(idle_prompt="anyone there?")
    user = LLMUserAggregator(context, params=LLMUserAggregatorParams(empty_user_turn=config))
    down = run(user, noise_while_waiting())
    assert llm_runs(down) == 1
    assert roles_and_texts(context) == [("system", "anyone there?")]


def test_empty_user_turn_none_leaves_every_empty_turn_unanswered() -> None:
    answered, unanswered = LLMContext(), LLMContext()
    default = LLMUserAggregator(answered)
    disabled = LLMUserAggregator(unanswered, params=LLMUserAggregatorParams(empty_user_turn=None))
    assert llm_runs(run(default, noise_cutting_in())) == 1
    assert llm_runs(run(disabled, noise_cutting_in())) == 0
    assert unanswered.messages == []


def test_no_answer_while_a_function_call_is_pending() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    call = FunctionCallFromLLM("f", "id1", {}, context)
    pending = FunctionCallsStartedFrame(function_calls=[call])
    done = FunctionCallResultFrame(function_name="f", tool_call_id="id1", result="r")
    down = run(user, [pending, *noise_cutting_in(), done, *noise_cutting_in()])
    assert llm_runs(down) == 1
    assert roles_and_texts(context) == [("system", PROMPT)]
    kinds = [type(f) for f in down]  # only the turn after the result was answered
    assert kinds.index(FunctionCallResultFrame) < kinds.index(LLMContextFrame)


def test_a_late_final_transcript_is_the_turn_and_no_prompt_is_added() -> None:
    """The speech timeout passes without a transcript; the final comes before the stop
    timeout: the turn is the caller's words, not an empty turn."""
    context = LLMContext()
    user = LLMUserAggregator(context)
    seen = Recorded(user)
    frames: list[Frame] = [
        BotStartedSpeakingFrame(),
        UserStartedSpeakingFrame(),
        InterruptionFrame(),
        UserStoppedSpeakingFrame(),
        SleepFrame(2),  # well past the 0.5 s speech timeout
        said("what about tomorrow"),
        SleepFrame(6),
    ]
    down = run(user, frames)
    assert llm_runs(down) == 1
    assert roles_and_texts(context) == [("user", "what about tomorrow")]
    assert seen.events == ["stopped"]


# ---------------------------------------------------------------------- stop timeout


def test_the_stop_timeout_ends_a_turn_whose_final_transcript_never_comes() -> None:
    """A long speech timeout waits for the final; the stop timeout ends the turn first, with
    the interim as the caller's words, and fires its event."""
    context = LLMContext()
    strategies = UserTurnStrategies(
        stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=30)]
    )
    params = LLMUserAggregatorParams(user_turn_strategies=strategies, user_turn_stop_timeout=2)
    user = LLMUserAggregator(context, params=params)
    seen = Recorded(user)
    frames: list[Frame] = [
        UserStartedSpeakingFrame(),
        InterimTranscriptionFrame("book a table", user_id="caller", timestamp=""),
        UserStoppedSpeakingFrame(),
        SleepFrame(5),
    ]
    down = run(user, frames)
    assert seen.events == ["stop_timeout", "stopped"]
    assert roles_and_texts(context) == [("user", "book a table")]
    assert llm_runs(down) == 1


def test_transcripts_restart_the_stop_timeout() -> None:
    context = LLMContext()
    strategies = UserTurnStrategies(
        stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=30)]
    )
    params = LLMUserAggregatorParams(user_turn_strategies=strategies, user_turn_stop_timeout=2)
    user = LLMUserAggregator(context, params=params)
    fired: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        user.add_event_handler("on_user_turn_stop_timeout", lambda agg: fired.append(loop.time()))
        t0 = loop.time()
        frames: list[Frame] = [
            UserStartedSpeakingFrame(),
            UserStoppedSpeakingFrame(),
            SleepFrame(1.5),
            InterimTranscriptionFrame("book", user_id="caller", timestamp=""),
            SleepFrame(3),
        ]
        await run_test(user, frames)
        fired[:] = [t - t0 for t in fired]

    run_virtual(main())
    # 2 s after the interim (at 1.5 s), not 2 s after the caller stopped.
    assert len(fired) == 1 and 3.4 < fired[0] < 3.7
    assert roles_and_texts(context) == [("user", "book")]


def test_the_stop_timeout_ends_a_turn_the_end_of_turn_model_holds() -> None:
    """The model says the caller is not done and its own quiet count is long: the stop
    timeout ends the turn with what was said."""
    context = LLMContext()
    analyzer = ScriptedAnalyzer([EndOfTurnState.INCOMPLETE], SmartTurnParams(stop_secs=30))
    strategy = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)
    params = LLMUserAggregatorParams(user_turn_strategies=UserTurnStrategies(stop=[strategy]))
    user = LLMUserAggregator(context, params=params)
    seen = Recorded(user)
    caller_audio = InputAudioRawFrame(b"\1\0" * 160, 8000, 1)
    frames: list[Frame] = [
        UserStartedSpeakingFrame(),
        caller_audio,
        said("So"),
        UserStoppedSpeakingFrame(),
        SleepFrame(4),  # held: no turn yet
    ]
    run(user, frames)
    assert seen.events == [] and context.messages == []
    user = LLMUserAggregator(context, params=params)
    seen = Recorded(user)
    run(user, [*frames, SleepFrame(2)])  # past the 5 s default
    assert seen.events == ["stop_timeout", "stopped"]
    assert roles_and_texts(context) == [("user", "So")]


# ---------------------------------------------------------------------- audio idle timeout


class ScriptedVAD(VADAnalyzer):
    """Loud audio (first sample != 0) is speech."""

    def num_frames_required(self) -> int:
        return 160

    def voice_confidence(self, buffer: bytes) -> float:
        return 1.0 if buffer[:2] != b"\x00\x00" else 0.0


def loud(secs: float) -> list[InputAudioRawFrame]:
    return [InputAudioRawFrame(b"\x10\x27" * 160, 8000, 1) for _ in range(int(secs / 0.02))]


async def vad_turn_with_audio_gone(audio_idle_timeout: float) -> tuple[list[Frame], list[Frame]]:
    vad = ScriptedVAD(params=VADParams(start_secs=0.1, stop_secs=0.2, min_volume=0.0))
    params = LLMUserAggregatorParams(
        vad_analyzer=vad, audio_idle_timeout=audio_idle_timeout, empty_user_turn=None
    )
    user = LLMUserAggregator(LLMContext(), params=params)
    # The caller speaks, then the stream stops (muted phone, paused stream) mid-speech.
    return await run_test(user, [*loud(0.3), SleepFrame(0.4)], params=PARAMS)


async def test_audio_idle_timeout_stops_a_speaking_vad_when_audio_stops() -> None:
    down, up = await vad_turn_with_audio_gone(0.1)
    assert any(isinstance(f, VADUserStoppedSpeakingFrame) for f in down)
    assert any(isinstance(f, UserStoppedSpeakingFrame) for f in down)
    assert any(isinstance(f, UserStoppedSpeakingFrame) for f in up)
    # 0 disables it: the VAD keeps the caller speaking.
    down, up = await vad_turn_with_audio_gone(0)
    assert any(isinstance(f, UserStartedSpeakingFrame) for f in up)
    assert not any(isinstance(f, UserStoppedSpeakingFrame) for f in [*down, *up])
