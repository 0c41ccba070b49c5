"""Test helpers for services: LLM replies, TTS audio length, and interrupting at a known point
instead of after a guessed sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from callpipe.frames.frames import (
    EndFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.testing.pipeline import FrameCollector, SleepFrame


async def run_then(
    processor: FrameProcessor,
    before: Sequence[Frame],
    after: Sequence[Frame],
    *,
    when: Callable[[list[Frame]], bool],
    params: PipelineParams | None = None,
) -> list[Frame]:
    """Send ``before``; once ``when(frames out so far)`` holds, send ``after`` and an EndFrame.

    Returns the frames that left ``processor`` downstream (StartFrame excluded).
    """
    down = FrameCollector(FrameDirection.DOWNSTREAM)
    task = PipelineTask(Pipeline([processor, down]), params=params, idle_timeout_secs=None)

    async def send(frames: Sequence[Frame]) -> None:
        for frame in frames:
            if isinstance(frame, SleepFrame):
                await asyncio.sleep(frame.seconds)
            else:
                await task.queue_frame(frame)

    async def feed() -> None:
        await send(before)
        for _ in range(1000):
            if when(down.frames):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("condition never held")
        await send(after)
        await task.queue_frame(EndFrame())

    feeder = asyncio.get_running_loop().create_task(feed())
    await task.run()
    await feeder
    return down.frames


def reply(*chunks: str) -> list[Frame]:
    """An LLM response as the TTS services receive it: start, text chunks, end."""
    return [
        LLMFullResponseStartFrame(),
        *(LLMTextFrame(c) for c in chunks),
        LLMFullResponseEndFrame(),
    ]


def audio_secs(frames: Sequence[Frame]) -> float:
    """Seconds of TTS audio among ``frames``."""
    return sum(len(f.audio) / 2 / f.sample_rate for f in frames if isinstance(f, TTSAudioRawFrame))
