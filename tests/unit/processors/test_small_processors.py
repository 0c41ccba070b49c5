"""Pipecat 1.14's small processors: FrameLogger, StatelessTextTransformer, SentenceAggregator,
IdleFrameProcessor, AsyncGeneratorProcessor, WakeCheckFilter and WakeNotifierFilter."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callpipe.frames.frames import (
    EagerTranscriptionFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    StartFrame,
    TextFrame,
    TranscriptionFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.sentence import SentenceAggregator
from callpipe.processors.async_generator import AsyncGeneratorProcessor
from callpipe.processors.filters.wake_check_filter import WakeCheckFilter
from callpipe.processors.filters.wake_notifier_filter import WakeNotifierFilter
from callpipe.processors.frame_processor import FrameDirection
from callpipe.processors.idle_frame_processor import IdleFrameProcessor
from callpipe.processors.logger import FrameLogger
from callpipe.processors.text_transformer import StatelessTextTransformer
from callpipe.serializers.base_serializer import FrameSerializer
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.utils.sync.event_notifier import EventNotifier

from ..pipeline.helpers import Recorder

LOGGER = "callpipe.processors.logger"


def texts(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TextFrame)]


def audio() -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=b"\0\0" * 160, sample_rate=8000)


def log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


class Bounce(Recorder):
    """Answers each downstream TextFrame with TextFrame('back') upstream."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, TextFrame) and direction is FrameDirection.DOWNSTREAM:
            await self.push_frame(TextFrame("back"), FrameDirection.UPSTREAM)
        await super().process_frame(frame, direction)


# ---------------------------------------------------------------------- FrameLogger


async def test_frame_logger_logs_frames_and_skips_ignored_types(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    down, _ = await run_test(FrameLogger(prefix="Seen", color="red"), [audio(), TextFrame("hi")])
    assert texts(down) == ["hi"]
    assert any(audio_frame for audio_frame in down if isinstance(audio_frame, InputAudioRawFrame))
    lines = log_lines(caplog)
    assert any(line.startswith("> Seen: TextFrame(") and "'hi'" in line for line in lines)
    assert not [line for line in lines if "InputAudioRawFrame" in line]


async def test_frame_logger_marks_upstream_and_shortens_audio(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    logger_ = FrameLogger(ignored_frame_types=())
    await run_test(Pipeline([logger_, Bounce()]), [audio(), TextFrame("go")])
    lines = log_lines(caplog)
    assert any(line.startswith("< Frame: TextFrame(") and "'back'" in line for line in lines)
    assert "> Frame: InputAudioRawFrame" in "\n".join(lines)
    assert any("(320 bytes, 8000 Hz)" in line for line in lines)


async def test_frame_logger_is_silent_without_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    await run_test(FrameLogger(), [TextFrame("hi")])
    assert log_lines(caplog) == []


def test_frame_logger_lets_unlogged_caller_audio_step_over_it() -> None:
    assert FrameLogger().input_audio_unused()
    assert not FrameLogger(ignored_frame_types=()).input_audio_unused()


# ---------------------------------------------------------------------- StatelessTextTransformer


async def test_text_transformer_takes_sync_and_async_functions() -> None:
    async def shout(text: str) -> str:
        await asyncio.sleep(0)
        return text.upper() + "!"

    pipeline = Pipeline([StatelessTextTransformer(str.strip), StatelessTextTransformer(shout)])
    down, _ = await run_test(
        pipeline, [LLMTextFrame(" hi "), LLMFullResponseEndFrame(), TextFrame("x")]
    )
    assert texts(down) == ["HI!", "X!"]
    assert any(isinstance(f, LLMFullResponseEndFrame) for f in down)  # other frames pass


async def test_text_transformer_keeps_the_direction() -> None:
    up_recorder = Recorder()
    pipeline = Pipeline([up_recorder, StatelessTextTransformer(str.upper), Bounce()])
    await run_test(pipeline, [TextFrame("go")])
    assert "BACK" in texts(up_recorder.seen)


# ---------------------------------------------------------------------- SentenceAggregator


async def test_sentence_aggregator_emits_whole_sentences_and_keeps_the_rest() -> None:
    pieces = ["Hello,", " world. How", " are you? Dr.", " Smith is", " here. And then"]
    down, _ = await run_test(SentenceAggregator(), [TextFrame(p) for p in pieces])
    assert texts(down) == ["Hello, world.", " How are you?", " Dr. Smith is here.", " And then"]
    assert "".join(texts(down)) == "".join(pieces)
    assert isinstance(down[-1], EndFrame)  # the rest went out before the EndFrame


async def test_sentence_aggregator_skips_interims_and_drops_interrupted_text() -> None:
    frames: list[Frame] = [
        InterimTranscriptionFrame("Hel"),
        EagerTranscriptionFrame("Hello there."),
        TextFrame("I was about"),
        InterruptionFrame(),
        SleepFrame(0.05),
        TextFrame("New. "),
    ]
    down, _ = await run_test(SentenceAggregator(), frames)
    assert texts(down) == ["New.", " "]


# ---------------------------------------------------------------------- IdleFrameProcessor


def spaced(frames: list[Frame], gap: float) -> list[Frame]:
    out: list[Frame] = []
    for frame in frames:
        out += [frame, SleepFrame(gap)]
    return out


async def test_idle_frame_processor_calls_back_once_per_quiet_timeout() -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[IdleFrameProcessor, float]] = []

    async def on_idle(processor: IdleFrameProcessor) -> None:
        calls.append((processor, loop.time()))

    busy = IdleFrameProcessor(callback=on_idle, timeout=0.2)
    await run_test(busy, spaced([TextFrame(str(i)) for i in range(6)], 0.05))
    assert calls == []  # never 0.2 s without a frame

    quiet = IdleFrameProcessor(callback=on_idle, timeout=0.05)
    await run_test(quiet, [SleepFrame(0.18)])
    assert len(calls) >= 2 and all(processor is quiet for processor, _ in calls)
    times = [t for _, t in calls]
    assert all(later - earlier >= 0.045 for earlier, later in zip(times, times[1:], strict=False))


async def test_idle_frame_processor_watches_only_the_given_types() -> None:
    calls: list[IdleFrameProcessor] = []

    async def on_idle(processor: IdleFrameProcessor) -> None:
        calls.append(processor)

    frames = spaced([TextFrame(str(i)) for i in range(8)], 0.05)
    await run_test(
        IdleFrameProcessor(callback=on_idle, timeout=0.2, types=[TranscriptionFrame]), frames
    )
    assert calls  # plain text is not the activity it waits for

    calls.clear()
    await run_test(IdleFrameProcessor(callback=on_idle, timeout=0.2, types=[TextFrame]), frames)
    assert calls == []


# ---------------------------------------------------------------------- AsyncGeneratorProcessor


class TextSerializer(FrameSerializer):
    def __init__(self) -> None:
        super().__init__()
        self.started_with: StartFrame | None = None

    async def setup(self, frame: StartFrame) -> None:
        self.started_with = frame

    async def serialize(self, frame: Frame) -> str | bytes | None:
        return frame.text if isinstance(frame, TextFrame) else None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        return None


async def test_async_generator_yields_serialized_frames_until_the_end() -> None:
    serializer = TextSerializer()
    processor = AsyncGeneratorProcessor(serializer=serializer)
    received: list[str | bytes] = []

    async def consume() -> None:
        async for data in processor.generator():
            received.append(data)

    consumer = asyncio.create_task(consume())
    down, _ = await run_test(processor, [TextFrame("a"), TextFrame(""), audio(), TextFrame("b")])
    await asyncio.wait_for(consumer, 1)  # the generator ended with the pipeline
    assert received == ["a", "b"]
    assert texts(down) == ["a", "", "b"]
    assert serializer.started_with is not None


# ---------------------------------------------------------------------- WakeCheckFilter


def said(text: str, user: str = "caller") -> TranscriptionFrame:
    return TranscriptionFrame(text, user_id=user)


async def test_wake_check_filter_passes_speech_after_the_phrase_until_keepalive_ends() -> None:
    with pytest.warns(DeprecationWarning):
        wake = WakeCheckFilter(["hey robot"], keepalive_timeout=0.2)
    frames: list[Frame] = [
        said("what is this"),
        said("so hey"),
        said(" Robot, the time?"),
        LLMTextFrame("not a transcription"),
        said("and the date?"),
        said("other person", user="x"),
        SleepFrame(0.3),
        said("too late"),
    ]
    down, _ = await run_test(wake, frames)
    assert texts(down) == ["hey Robot, the time?", "not a transcription", "and the date?"]


# ---------------------------------------------------------------------- WakeNotifierFilter


async def test_wake_notifier_filter_notifies_on_matching_frames_and_passes_all() -> None:
    notified: list[int] = []

    class CountingNotifier(EventNotifier):
        async def notify(self) -> None:
            notified.append(1)
            await super().notify()

    async def is_yes(frame: Frame) -> bool:
        return isinstance(frame, TextFrame) and frame.text == "yes"

    notifier = CountingNotifier()
    wake = WakeNotifierFilter(notifier, types=(TranscriptionFrame,), filter=is_yes)
    frames = [said("no"), said("yes"), TextFrame("yes"), said("yes")]
    down, _ = await run_test(wake, frames)
    assert texts(down) == ["no", "yes", "yes", "yes"]
    assert len(notified) == 2
    await asyncio.wait_for(notifier.wait(), 0.5)
