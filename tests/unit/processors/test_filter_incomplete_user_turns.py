"""The user aggregator with FilterIncompleteUserTurnStrategies: the LLM is switched to the
marker protocol at start, and on_user_turn_stopped waits for the LLM's verdict. Virtual time."""

from __future__ import annotations

import pytest

from callpipe.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTurnInferenceCompletedFrame,
)
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
    UserTurnStoppedMessage,
)
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_clock import run_virtual
from callpipe.turns.user_stop import LLMTurnCompletionUserTurnStopStrategy
from callpipe.turns.user_turn_completion_mixin import UserTurnCompletionConfig
from callpipe.turns.user_turn_strategies import (
    FilterIncompleteUserTurnStrategies,
    SpeechTimeoutUserTurnStopStrategy,
    UserTurnStrategies,
)

CONFIG = UserTurnCompletionConfig(incomplete_short_timeout=1.0)


def turn(text: str) -> list[Frame]:
    return [
        UserStartedSpeakingFrame(),
        TranscriptionFrame(text, user_id="caller", timestamp=""),
        UserStoppedSpeakingFrame(),
        SleepFrame(1),
    ]


def run(
    user: LLMUserAggregator, frames: list[Frame]
) -> tuple[list[Frame], list[Frame], list[UserTurnStoppedMessage]]:
    stops: list[UserTurnStoppedMessage] = []
    user.add_event_handler("on_user_turn_stopped", lambda agg, strategy, msg: stops.append(msg))

    async def main() -> tuple[list[Frame], list[Frame]]:
        return await run_test(user, frames)

    down, up = run_virtual(main())
    return down, up, stops


def settings_frames(frames: list[Frame]) -> list[LLMUpdateSettingsFrame]:
    return [f for f in frames if isinstance(f, LLMUpdateSettingsFrame)]


def test_the_strategies_keep_the_detectors_and_add_the_llm_gate() -> None:
    speech = SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.3)
    strategies = FilterIncompleteUserTurnStrategies(stop=[speech], config=CONFIG)
    assert strategies.stop is not None and strategies.stop[0] is speech
    gate = strategies.completion_strategy()
    assert isinstance(gate, LLMTurnCompletionUserTurnStopStrategy) and gate.config is CONFIG
    assert strategies.speech_timeout == 0.3
    assert UserTurnStrategies().completion_strategy() is None


def test_the_llm_is_switched_on_at_start_and_the_stop_waits_for_the_verdict() -> None:
    context = LLMContext()
    strategies = FilterIncompleteUserTurnStrategies(config=CONFIG)
    user = LLMUserAggregator(
        context, params=LLMUserAggregatorParams(user_turn_strategies=strategies)
    )
    frames = [
        *turn("i'd like to book"),
        *turn("a table for two"),
        UserTurnInferenceCompletedFrame(),
    ]
    down, up, stops = run(user, frames)

    (update,) = settings_frames(down)
    assert update.settings == {
        "filter_incomplete_user_turns": True,
        "user_turn_completion_config": CONFIG,
    }
    assert update.reach_inactive_services
    # Each segment still reaches the LLM at once ...
    assert sum(isinstance(f, LLMContextFrame) for f in down) == 2
    # ... but the turn is reported once, whole, when the LLM found it complete.
    assert [s.content for s in stops] == ["i'd like to book a table for two"]
    assert sum(isinstance(f, UserTurnInferenceCompletedFrame) for f in down) == 1


def test_without_the_strategy_nothing_changes() -> None:
    user = LLMUserAggregator(LLMContext())
    down, _, stops = run(user, turn("hello"))
    assert settings_frames(down) == []
    assert [s.content for s in stops] == ["hello"]


def test_the_deprecated_params_are_rewired_to_the_strategy() -> None:
    with pytest.warns(DeprecationWarning):
        params = LLMUserAggregatorParams(
            filter_incomplete_user_turns=True, user_turn_completion_config=CONFIG
        )
    user = LLMUserAggregator(LLMContext(), params=params)
    gate = user.user_turn_strategies.completion_strategy()
    assert gate is not None and gate.config is CONFIG
    down, _, stops = run(user, turn("hello"))
    assert len(settings_frames(down)) == 1
    assert stops == []  # no verdict came


def test_a_component_of_your_own_completes_the_turn() -> None:
    """1.14's ``stop=[deferred(detector), ExternalUserTurnCompletionStopStrategy()]``: the
    detector sends each pause to the LLM, the turn ends at the component's verdict, and the
    LLM is not switched to the marker protocol."""
    from callpipe.turns.user_stop import (
        DeferredUserTurnStopStrategy,
        ExternalUserTurnCompletionStopStrategy,
        deferred,
    )

    speech = SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.3)
    wrapped = deferred(speech)
    assert isinstance(wrapped, DeferredUserTurnStopStrategy) and wrapped.inner is speech
    judge = ExternalUserTurnCompletionStopStrategy()
    strategies = UserTurnStrategies(stop=[wrapped, judge])
    assert strategies.stop == [speech, judge]
    assert strategies.completion_strategy() is judge and strategies.speech_timeout == 0.3
    user = LLMUserAggregator(
        LLMContext(), params=LLMUserAggregatorParams(user_turn_strategies=strategies)
    )
    frames = [*turn("my number is"), *turn("five five five"), UserTurnInferenceCompletedFrame()]
    down, _, stops = run(user, frames)
    assert settings_frames(down) == []
    assert sum(isinstance(f, LLMContextFrame) for f in down) == 2
    assert [s.content for s in stops] == ["my number is five five five"]


def test_deferred_without_a_completion_strategy_warns_and_ends_turns_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from callpipe.turns.user_stop import deferred

    speech = SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.3)
    with caplog.at_level("WARNING"):
        strategies = UserTurnStrategies(stop=[deferred(speech)])
    assert strategies.stop == [speech] and strategies.completion_strategy() is None
    assert "deferred(...)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        FilterIncompleteUserTurnStrategies(stop=[deferred(speech)])
    assert "deferred(...)" not in caplog.text
    user = LLMUserAggregator(
        LLMContext(), params=LLMUserAggregatorParams(user_turn_strategies=strategies)
    )
    _, _, stops = run(user, turn("hello"))
    assert [s.content for s in stops] == ["hello"]
