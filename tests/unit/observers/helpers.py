"""Drive a real worker frame by frame, on a clock the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from callpipe.frames.frames import EndFrame, Frame
from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.frame_processor import FrameDirection

SETTLE = 0.02  # long enough for a queued frame to cross a two-processor pipeline


class ManualClock:
    """The pipeline clock, moved by the test (``advance``); sleeps only yield."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def advance(self, secs: float) -> None:
        self.t += secs

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(0)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


Step = Frame | float | tuple[Frame, FrameDirection]


async def drive(
    worker: PipelineWorker, steps: Sequence[Step], clock: ManualClock | None = None
) -> None:
    """Run ``worker``; queue each frame and let it through, or move ``clock`` by a float step
    (without a clock: really wait that long); end with an EndFrame and wait for the run."""
    run = asyncio.create_task(worker.run())
    await asyncio.sleep(SETTLE)
    for step in steps:
        if isinstance(step, float | int):
            if clock is not None:
                clock.advance(step)
            else:
                await asyncio.sleep(step)
            continue
        frame, direction = step if isinstance(step, tuple) else (step, FrameDirection.DOWNSTREAM)
        await worker.queue_frame(frame, direction)
        await asyncio.sleep(SETTLE)
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(run, 5)
