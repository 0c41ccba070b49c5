"""Mute strategies frame by frame, and the turn-strategy configuration the aggregator reads."""

from __future__ import annotations

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallFromLLM,
    FunctionCallsStartedFrame,
    TextFrame,
)
from callpipe.turns.user_mute import (
    AlwaysUserMuteStrategy,
    BaseUserMuteStrategy,
    FirstSpeechUserMuteStrategy,
    FunctionCallUserMuteStrategy,
    MuteUntilFirstBotCompleteUserMuteStrategy,
)
from callpipe.turns.user_start import MinWordsUserTurnStartStrategy, VADUserTurnStartStrategy
from callpipe.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies, UserTurnStrategies


async def states(strategy: BaseUserMuteStrategy, frames: list[Frame]) -> list[bool]:
    return [await strategy.process_frame(f) for f in frames]


def speech() -> list[Frame]:
    return [TextFrame("x"), BotStartedSpeakingFrame(), TextFrame("x"), BotStoppedSpeakingFrame()]


async def test_always_and_first_speech() -> None:
    twice = speech() + speech()
    assert await states(AlwaysUserMuteStrategy(), twice) == [False, True, True, False] * 2
    first = await states(FirstSpeechUserMuteStrategy(), twice)
    assert first == [False, True, True, False] + [False] * 4


async def test_until_first_bot_complete_and_release_on_early_error() -> None:
    strategy = MuteUntilFirstBotCompleteUserMuteStrategy()
    assert await states(strategy, speech() + speech()) == [True, True, True, False] + [False] * 4
    failed = MuteUntilFirstBotCompleteUserMuteStrategy()
    frames: list[Frame] = [TextFrame("x"), ErrorFrame(error="tts down"), TextFrame("x")]
    assert await states(failed, frames) == [True, False, False]


async def test_function_call_mute_tracks_each_call() -> None:
    calls = [FunctionCallFromLLM("f", "a", {}, None), FunctionCallFromLLM("g", "b", {}, None)]
    frames: list[Frame] = [
        FunctionCallsStartedFrame(function_calls=calls),
        FunctionCallCancelFrame(function_name="f", tool_call_id="a"),
        FunctionCallCancelFrame(function_name="g", tool_call_id="b"),
    ]
    assert await states(FunctionCallUserMuteStrategy(), frames) == [True, True, False]


def test_turn_strategies_configuration() -> None:
    default = UserTurnStrategies()
    assert default.interruptions_enabled and default.min_words == 1
    assert default.speech_timeout == 0.6
    custom = UserTurnStrategies(
        start=[
            VADUserTurnStartStrategy(enable_interruptions=False),
            MinWordsUserTurnStartStrategy(min_words=3, enable_interruptions=False),
        ],
        stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=1.2)],
    )
    assert not custom.interruptions_enabled
    assert custom.min_words == 3 and custom.speech_timeout == 1.2
    assert ExternalUserTurnStrategies().speech_timeout == 0.5  # its stop strategy's timeout
