"""UserTurnProcessor: one turn decision for several aggregators (Pipecat 1.14's external turn
management). Runs on virtual time (:func:`run_virtual`): the timeouts cost nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from callpipe.audio.turn.base_turn_analyzer import EndOfTurnState
from callpipe.audio.vad.vad_analyzer import VADParams
from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMContextFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StopInterruptionFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.pipeline.parallel_pipeline import ParallelPipeline
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from callpipe.processors.audio.vad_processor import VADProcessor
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.testing import run_test
from callpipe.testing.pipeline import FrameCollector, SleepFrame
from callpipe.testing.virtual_clock import run_virtual
from callpipe.transports.base_input import BaseInputTransport
from callpipe.transports.base_transport import TransportParams
from callpipe.turns.user_start import (
    MinWordsUserTurnStartStrategy,
    VADUserTurnStartStrategy,
    WakePhraseUserTurnStartStrategy,
)
from callpipe.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from callpipe.turns.user_turn_processor import UserTurnProcessor
from callpipe.turns.user_turn_strategies import (
    ExternalUserTurnStrategies,
    FilterIncompleteUserTurnStrategies,
    SpeechTimeoutUserTurnStopStrategy,
    UserTurnStrategies,
)

from ..processors.test_user_turn_timeouts import PARAMS, ScriptedVAD, loud
from .test_turn_analyzer_stop import ScriptedAnalyzer


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, user_id="caller", timestamp="")


def vad_start() -> list[Frame]:
    """What callpipe's transport VAD (and a VADProcessor) push when the caller starts."""
    return [
        VADUserStartedSpeakingFrame(start_secs=0.2),
        UserStartedSpeakingFrame(),
        InterruptionFrame(),
    ]


def vad_stop() -> list[Frame]:
    return [
        VADUserStoppedSpeakingFrame(stop_secs=0.2),
        UserStoppedSpeakingFrame(),
        StopInterruptionFrame(),
    ]


def quiet(secs: float) -> list[InputAudioRawFrame]:
    return [InputAudioRawFrame(b"\x00\x00" * 160, 8000, 1) for _ in range(int(secs / 0.02))]


def count(frames: list[Frame], cls: type[Frame]) -> int:
    return sum(type(f) is cls for f in frames)


class Events:
    """The processor's events, in order, with the virtual time of each."""

    def __init__(self, processor: UserTurnProcessor) -> None:
        self.names: list[str] = []
        self.times: dict[str, float] = {}
        self.strategies: dict[str, object] = {}
        for name in (
            "on_user_turn_started",
            "on_user_turn_stopped",
            "on_user_turn_inference_triggered",
        ):
            processor.add_event_handler(name, self._with_strategy(name))
        for name in ("on_user_turn_stop_timeout", "on_user_turn_idle"):
            processor.add_event_handler(name, self._plain(name))

    def _record(self, name: str, strategy: object = None) -> None:
        short = name.removeprefix("on_user_turn_")
        self.names.append(short)
        self.times[short] = asyncio.get_running_loop().time()
        self.strategies[short] = strategy

    def _with_strategy(self, name: str) -> Callable[[object, object], None]:
        def handler(processor: object, strategy: object) -> None:
            self._record(name, strategy)

        return handler

    def _plain(self, name: str) -> Callable[[object], None]:
        def handler(processor: object) -> None:
            self._record(name)

        return handler


def run(processor: FrameProcessor, frames: list[Frame]) -> tuple[list[Frame], list[Frame]]:
    async def main() -> tuple[list[Frame], list[Frame]]:
        return await run_test(processor, frames, params=PARAMS)

    return run_virtual(main())


# ---------------------------------------------------------------------- behind a VAD


def test_vad_turn_ends_at_the_stop_once_the_final_transcript_is_in() -> None:
    processor = UserTurnProcessor()
    events = Events(processor)
    down, up = run(
        processor, [*vad_start(), said("hello there"), SleepFrame(0.1), *vad_stop(), SleepFrame(1)]
    )
    # One turn start and stop, announced downstream only (the VAD told those before it).
    assert count(down, UserStartedSpeakingFrame) == 1
    assert count(down, UserStoppedSpeakingFrame) == 1
    assert count(up, UserStartedSpeakingFrame) == count(up, UserStoppedSpeakingFrame) == 0
    assert count(down, InterruptionFrame) == 1  # the VAD's barge-in replaced by the processor's
    assert count(down, VADUserStartedSpeakingFrame) == count(down, VADUserStoppedSpeakingFrame) == 1
    order = [type(f).__name__ for f in down if not isinstance(f, VADUserStartedSpeakingFrame)]
    assert order.index("UserStartedSpeakingFrame") < order.index("TranscriptionFrame")
    assert order.index("TranscriptionFrame") < order.index("UserStoppedSpeakingFrame")
    assert events.names == ["started", "inference_triggered", "stopped"]
    # The final transcript was in at the VAD stop: no speech timeout to wait for.
    assert events.times["stopped"] - events.times["started"] == pytest.approx(0.1, abs=0.05)
    assert isinstance(events.strategies["started"], VADUserTurnStartStrategy)
    assert isinstance(events.strategies["stopped"], SpeechTimeoutUserTurnStopStrategy)


def test_a_late_transcript_waits_for_the_speech_timeout() -> None:
    strategies = UserTurnStrategies(
        stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.8)]
    )
    processor = UserTurnProcessor(user_turn_strategies=strategies)
    events = Events(processor)
    interim = InterimTranscriptionFrame("hello th", user_id="caller", timestamp="")
    down, _ = run(processor, [*vad_start(), interim, *vad_stop(), SleepFrame(2)])
    assert count(down, UserStoppedSpeakingFrame) == 1
    assert events.names == ["started", "inference_triggered", "stopped"]
    # Only an interim came: the stop waited the speech timeout after the caller went quiet.
    assert events.times["stopped"] - events.times["started"] == pytest.approx(0.8, abs=0.05)


def test_a_final_transcript_after_the_stop_ends_the_turn_at_once() -> None:
    processor = UserTurnProcessor()
    events = Events(processor)
    down, _ = run(
        processor, [*vad_start(), *vad_stop(), SleepFrame(0.3), said("hi"), SleepFrame(2)]
    )
    assert count(down, UserStoppedSpeakingFrame) == 1
    assert events.times["stopped"] - events.times["started"] == pytest.approx(0.3, abs=0.05)


def test_a_pause_mid_turn_does_not_start_a_second_turn() -> None:
    processor = UserTurnProcessor()
    frames = [*vad_start(), *vad_stop(), *vad_start(), said("go on"), *vad_stop(), SleepFrame(1)]
    down, _ = run(processor, frames)
    assert count(down, UserStartedSpeakingFrame) == count(down, UserStoppedSpeakingFrame) == 1
    assert count(down, InterruptionFrame) == 1


# ---------------------------------------------------------------------- without a VAD


def test_a_transcript_starts_a_turn_when_no_vad_runs() -> None:
    processor = UserTurnProcessor()
    events = Events(processor)
    down, up = run(processor, [said("hello"), SleepFrame(0.2), said("again"), SleepFrame(2)])
    # No VAD before it: the turn is announced (and the bot interrupted) both ways.
    for frames in (down, up):
        assert count(frames, UserStartedSpeakingFrame) == 1
        assert count(frames, UserStoppedSpeakingFrame) == 1
        assert count(frames, InterruptionFrame) == 1
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["hello", "again"]
    assert events.names == ["started", "inference_triggered", "stopped"]
    # The turn ends when the transcripts pause for the speech timeout (0.6 s by default).
    assert events.times["stopped"] - events.times["started"] == pytest.approx(0.8, abs=0.05)


# ---------------------------------------------------------------------- min words, interruptions


def test_min_words_holds_the_barge_in_until_enough_words() -> None:
    strategies = UserTurnStrategies(
        start=[VADUserTurnStartStrategy(), MinWordsUserTurnStartStrategy(min_words=3)]
    )
    processor = UserTurnProcessor(user_turn_strategies=strategies)
    events = Events(processor)
    frames = [
        BotStartedSpeakingFrame(),
        *vad_start(),
        InterimTranscriptionFrame("uh", user_id="caller", timestamp=""),
        said("uh huh"),
        *vad_stop(),
        SleepFrame(1),
    ]
    down, _ = run(processor, frames)
    assert count(down, UserStartedSpeakingFrame) == 0
    assert count(down, InterruptionFrame) == 0  # the bot keeps talking
    assert count(down, TranscriptionFrame) == count(down, InterimTranscriptionFrame) == 0
    assert events.names == []

    processor = UserTurnProcessor(user_turn_strategies=strategies)
    events = Events(processor)
    frames = [
        BotStartedSpeakingFrame(),
        *vad_start(),
        said("wait stop right there"),
        *vad_stop(),
        SleepFrame(1),
    ]
    down, _ = run(processor, frames)
    assert count(down, UserStartedSpeakingFrame) == count(down, InterruptionFrame) == 1
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["wait stop right there"]
    assert isinstance(events.strategies["started"], MinWordsUserTurnStartStrategy)
    assert events.names == ["started", "inference_triggered", "stopped"]


def test_a_barge_in_interrupts_the_speaking_bot() -> None:
    processor = UserTurnProcessor()
    down, _ = run(processor, [BotStartedSpeakingFrame(), *vad_start(), said("stop"), *vad_stop()])
    starts = [i for i, f in enumerate(down) if isinstance(f, UserStartedSpeakingFrame)]
    interruptions = [i for i, f in enumerate(down) if isinstance(f, InterruptionFrame)]
    assert len(starts) == len(interruptions) == 1 and starts[0] < interruptions[0]


def test_start_strategies_without_interruptions_leave_the_bot_talking() -> None:
    strategies = UserTurnStrategies(start=[VADUserTurnStartStrategy(enable_interruptions=False)])
    processor = UserTurnProcessor(user_turn_strategies=strategies)
    down, _ = run(processor, [BotStartedSpeakingFrame(), *vad_start(), said("hm"), *vad_stop()])
    assert count(down, UserStartedSpeakingFrame) == 1
    assert count(down, InterruptionFrame) == 0


def test_proposals_are_decided_here_with_external_strategies() -> None:
    processor = UserTurnProcessor(user_turn_strategies=ExternalUserTurnStrategies())
    events = Events(processor)
    frames = [
        BotStartedSpeakingFrame(),
        ProposedUserStartedSpeakingFrame(),
        said("book a table"),
        ProposedUserStoppedSpeakingFrame(),
        SleepFrame(1),
    ]
    down, up = run(processor, frames)
    for frames_out in (down, up):
        assert count(frames_out, UserStartedSpeakingFrame) == 1
        assert count(frames_out, UserStoppedSpeakingFrame) == 1
        assert count(frames_out, InterruptionFrame) == 1
    assert count(down, ProposedUserStartedSpeakingFrame) == 0  # resolved once, here
    assert count(down, ProposedUserStoppedSpeakingFrame) == 0
    assert events.names == ["started", "inference_triggered", "stopped"]


# ---------------------------------------------------------------------- timeouts


def test_the_stop_timeout_ends_a_turn_without_words() -> None:
    processor = UserTurnProcessor(user_turn_stop_timeout=2.0)
    events = Events(processor)
    down, _ = run(processor, [*vad_start(), *vad_stop(), SleepFrame(3)])
    assert events.names == ["started", "stop_timeout", "stopped"]
    assert events.strategies["stopped"] is None
    assert events.times["stopped"] - events.times["started"] == pytest.approx(2.0, abs=0.05)
    assert count(down, UserStoppedSpeakingFrame) == 1


def test_the_idle_event_fires_after_the_bot_finished() -> None:
    processor = UserTurnProcessor(user_idle_timeout=2.0)
    events = Events(processor)
    run(processor, [BotStartedSpeakingFrame(), BotStoppedSpeakingFrame(), SleepFrame(3)])
    assert events.names == ["idle"]
    # Speech within the timeout cancels it.
    processor = UserTurnProcessor(user_idle_timeout=2.0)
    events = Events(processor)
    frames = [
        BotStartedSpeakingFrame(),
        BotStoppedSpeakingFrame(),
        SleepFrame(1),
        *vad_start(),
        said("yes"),
        *vad_stop(),
        SleepFrame(1.5),
    ]
    run(processor, frames)
    assert "idle" not in events.names


# ---------------------------------------------------------------------- smart turn


def test_the_turn_analyzer_holds_the_stop_until_the_caller_finished() -> None:
    analyzer = ScriptedAnalyzer([EndOfTurnState.INCOMPLETE, EndOfTurnState.COMPLETE])
    strategy = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)
    processor = UserTurnProcessor(user_turn_strategies=UserTurnStrategies(stop=[strategy]))
    events = Events(processor)
    frames: list[Frame] = [
        *vad_start(),
        *quiet(0.1),
        said("I would like"),
        *vad_stop(),
        SleepFrame(0.1),  # the model says "not done"
        *vad_start(),
        said("a table for two"),
        *vad_stop(),
        SleepFrame(1),
    ]
    down, _ = run(processor, frames)
    assert count(down, UserStartedSpeakingFrame) == count(down, UserStoppedSpeakingFrame) == 1
    assert events.names == ["started", "inference_triggered", "stopped"]
    assert events.strategies["stopped"] is strategy
    assert analyzer.fed  # the caller's audio reached the model


# ---------------------------------------------------------------------- warnings


def test_unsupported_strategies_are_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        UserTurnProcessor(
            user_turn_strategies=FilterIncompleteUserTurnStrategies(
                start=[WakePhraseUserTurnStartStrategy(phrases=["hey robot"])]
            )
        )
    assert "WakePhraseUserTurnStartStrategy" in caplog.text
    assert "LLMTurnCompletionUserTurnStopStrategy" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        UserTurnProcessor()
    assert caplog.text == ""


# ---------------------------------------------------------------------- with aggregators


class Recorder(FrameProcessor):
    """Keeps every frame going downstream at its place in a branch."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            self.frames.append(frame)
        await self.push_frame(frame, direction)


def external_aggregator(context: LLMContext) -> LLMUserAggregator:
    params = LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies())
    return LLMUserAggregator(context, params=params)


def user_texts(context: LLMContext) -> list[str]:
    return [str(m["content"]) for m in context.messages if m["role"] == "user"]  # type: ignore[index]


def test_two_aggregators_in_a_parallel_pipeline_write_each_turn_once() -> None:
    contexts = [LLMContext(), LLMContext()]
    recorders = [Recorder(), Recorder()]
    aggregators = [external_aggregator(c) for c in contexts]
    stopped: list[int] = []
    for index, aggregator in enumerate(aggregators):
        aggregator.add_event_handler(
            "on_user_turn_stopped", lambda agg, strategy, message, i=index: stopped.append(i)
        )
    pipeline = Pipeline(
        [
            UserTurnProcessor(),
            ParallelPipeline([aggregators[0], recorders[0]], [aggregators[1], recorders[1]]),
        ]
    )
    frames = [
        *vad_start(),
        said("hello there"),
        *vad_stop(),
        SleepFrame(1),
        BotStartedSpeakingFrame(),
        *vad_start(),
        *vad_stop(),
        SleepFrame(0.2),
        said("what time is it"),
        SleepFrame(2),
    ]
    run(pipeline, frames)
    for context, recorder in zip(contexts, recorders, strict=True):
        assert user_texts(context) == ["hello there", "what time is it"]
        assert count(recorder.frames, LLMContextFrame) == 2
        assert count(recorder.frames, UserStartedSpeakingFrame) == 2
        assert count(recorder.frames, UserStoppedSpeakingFrame) == 2
        assert count(recorder.frames, InterruptionFrame) == 2
    assert sorted(stopped) == [0, 0, 1, 1]


@pytest.mark.parametrize("vad_in", ["transport", "processor"])
def test_behind_a_real_vad_each_turn_is_announced_once(vad_in: str) -> None:
    vad = ScriptedVAD(params=VADParams(start_secs=0.1, stop_secs=0.2, min_volume=0.0))
    first: list[FrameProcessor]
    if vad_in == "transport":
        first = [BaseInputTransport(TransportParams(audio_in_enabled=True, vad_analyzer=vad))]
    else:
        first = [
            BaseInputTransport(TransportParams(audio_in_enabled=True)),
            VADProcessor(vad_analyzer=vad, audio_idle_timeout=0),
        ]
    context = LLMContext()
    after = FrameCollector(FrameDirection.DOWNSTREAM)
    pipeline = Pipeline([*first, UserTurnProcessor(), external_aggregator(context), after])
    frames: list[Frame] = [
        BotStartedSpeakingFrame(),
        *loud(0.4),
        said("hold on"),
        *quiet(0.4),
        SleepFrame(1),
    ]
    run(pipeline, frames)
    assert count(after.frames, UserStartedSpeakingFrame) == 1
    assert count(after.frames, UserStoppedSpeakingFrame) == 1
    assert count(after.frames, InterruptionFrame) == 1
    assert count(after.frames, LLMContextFrame) == 1
    assert user_texts(context) == ["hold on"]


def test_external_strategies_adopt_turn_frames_from_before() -> None:
    processor = UserTurnProcessor(user_turn_strategies=ExternalUserTurnStrategies())
    events = Events(processor)
    down, _ = run(processor, [*vad_start(), said("hi"), *vad_stop(), SleepFrame(1)])
    # Passed on as they came (not announced again), the sender's barge-in with them.
    assert count(down, UserStartedSpeakingFrame) == count(down, UserStoppedSpeakingFrame) == 1
    assert count(down, InterruptionFrame) == 1
    assert events.names == ["started", "inference_triggered", "stopped"]
