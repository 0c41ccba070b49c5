"""The 1.14 user aggregator with ``TurnAnalyzerUserTurnStopStrategy`` (scripted analyzer)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from callpipe.audio.turn.base_turn_analyzer import EndOfTurnState
from callpipe.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    MetricsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TurnMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
    UserTurnStoppedMessage,
)
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from callpipe.turns.user_turn_strategies import UserTurnStrategies

from ..turns.test_turn_analyzer_stop import ScriptedAnalyzer

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
COMPLETE, INCOMPLETE = EndOfTurnState.COMPLETE, EndOfTurnState.INCOMPLETE


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, user_id="caller", timestamp="")


def audio(n: int = 3) -> list[Frame]:
    return [InputAudioRawFrame(audio=b"\1\0" * 160, sample_rate=8000, num_channels=1)] * n


class Bot:
    """An aggregator with a scripted analyzer, recording turn events."""

    def __init__(self, analyzer: ScriptedAnalyzer) -> None:
        self.analyzer = analyzer
        self.context = LLMContext()
        strategy = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)
        params = LLMUserAggregatorParams(user_turn_strategies=UserTurnStrategies(stop=[strategy]))
        self.user = LLMUserAggregator(self.context, params=params)
        self.started = 0
        self.stopped: list[tuple[float, str | None]] = []

        @self.user.event_handler("on_user_turn_started")
        async def on_started(aggregator: object, strategy: object) -> None:
            self.started += 1

        @self.user.event_handler("on_user_turn_stopped")
        async def on_stopped(
            aggregator: object, strategy: object, message: UserTurnStoppedMessage
        ) -> None:
            self.stopped.append((time.monotonic(), message.content))

    async def run(self, frames: list[Any], params: PipelineParams = PARAMS) -> list[Frame]:
        down, _ = await run_test(self.user, frames, params=params)
        return down

    def user_messages(self) -> list[str]:
        return [m["content"] for m in self.context.messages if m["role"] == "user"]


async def test_complete_ends_the_turn_and_audio_reaches_the_analyzer() -> None:
    bot = Bot(ScriptedAnalyzer([COMPLETE]))
    frames = [
        VADUserStartedSpeakingFrame(start_secs=0.2),
        UserStartedSpeakingFrame(),
        *audio(3),
        said("What time is it?"),
        VADUserStoppedSpeakingFrame(stop_secs=0.8),
        UserStoppedSpeakingFrame(),
        *audio(2),
        SleepFrame(0.2),
    ]
    down = await bot.run(frames)
    assert bot.user_messages() == ["What time is it?"]
    assert len([f for f in down if isinstance(f, LLMContextFrame)]) == 1
    assert bot.analyzer.fed == [(320, True)] * 3 + [(320, False)] * 2
    assert bot.analyzer.sample_rate == 8000
    assert bot.analyzer.vad_start_secs == 0.2
    assert bot.analyzer.vad_stop_secs == 0.8


async def test_incomplete_holds_the_turn_and_the_caller_goes_on() -> None:
    bot = Bot(ScriptedAnalyzer([INCOMPLETE, COMPLETE]))
    frames = [
        UserStartedSpeakingFrame(),
        *audio(1),
        said("I would like to book"),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.15),  # the model said INCOMPLETE: no turn yet (fallback is 0.3 s)
        UserStartedSpeakingFrame(),
        said("a table for two."),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.2),
    ]
    await bot.run(frames)
    assert bot.user_messages() == ["I would like to book a table for two."]
    assert bot.started == 1
    assert [text for _, text in bot.stopped] == ["I would like to book a table for two."]


async def test_incomplete_ends_after_the_fallback_quiet() -> None:
    bot = Bot(ScriptedAnalyzer([INCOMPLETE]))  # stop_secs=0.3
    frames: list[Any] = [
        UserStartedSpeakingFrame(),
        *audio(1),
        said("Well, I think"),
        UserStoppedSpeakingFrame(),
    ]
    sent = time.monotonic()
    await bot.run([*frames, SleepFrame(0.6)])
    assert bot.user_messages() == ["Well, I think"]
    [(at, _)] = bot.stopped
    assert at - sent >= 0.3
    # The turn latency still counts from when the caller went quiet, not from the release.
    stopped_at = bot.user._latency.stopped_at
    assert stopped_at is not None and at - stopped_at >= 0.3


async def test_analyzer_silence_count_ends_a_held_turn() -> None:
    analyzer = ScriptedAnalyzer([INCOMPLETE], SmartTurnParams(stop_secs=30))
    bot = Bot(analyzer)
    frames: list[Any] = [UserStartedSpeakingFrame(), *audio(1), said("So")]
    frames.append(UserStoppedSpeakingFrame())
    frames += [SleepFrame(0.1)]
    await bot.run(frames)
    assert bot.user_messages() == []  # held (fallback 30 s), then the call ended
    analyzer.quiet_ends_turn = True
    bot2 = Bot(analyzer)
    await bot2.run([*frames, *audio(1), SleepFrame(0.1)])
    assert bot2.user_messages() == ["So"]


async def test_failing_analyzer_degrades_to_vad_and_metrics_are_pushed() -> None:
    bot = Bot(ScriptedAnalyzer([RuntimeError("boom")]))
    frames = [UserStartedSpeakingFrame(), *audio(1), said("Hi."), UserStoppedSpeakingFrame()]
    frames.append(SleepFrame(0.1))
    await bot.run(frames)
    assert bot.user_messages() == ["Hi."]
    metered = Bot(ScriptedAnalyzer([COMPLETE]))
    params = PipelineParams(audio_in_sample_rate=8000, enable_metrics=True)
    down = await metered.run(frames, params=params)
    data = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    turn = [d for d in data if isinstance(d, TurnMetricsData)]
    assert len(turn) == 1 and turn[0].is_complete and turn[0].probability == 0.9


async def test_without_caller_audio_turns_end_at_vad_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = Bot(ScriptedAnalyzer([INCOMPLETE]))  # would hold every turn, had it audio to judge
    frames = [UserStartedSpeakingFrame(), said("Hi."), UserStoppedSpeakingFrame(), SleepFrame(0.1)]
    await bot.run(frames)
    assert bot.user_messages() == ["Hi."]
    assert "no caller audio" in caplog.text
