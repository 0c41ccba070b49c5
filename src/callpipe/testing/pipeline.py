"""Run one processor in a throwaway pipeline and collect what comes out of each end."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from callpipe.frames.frames import EndFrame, Frame, StartFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class FrameCollector(FrameProcessor):
    """Records every frame it sees (one direction), passing everything on.

    ``direct``: frames are recorded as they arrive, never queued, so an interruption cannot
    drop a frame the collector has not looked at yet.
    """

    direct = True

    def __init__(self, direction: FrameDirection, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.direction = direction
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is self.direction and not isinstance(frame, StartFrame):
            self.frames.append(frame)
        await self.push_frame(frame, direction)


class SleepFrame(Frame):
    """Not a real frame: tells :func:`run_test` to wait before sending the next frame.

    With ``until``, the wait ends as soon as ``until()`` is true (checked every 10 ms), and
    ``seconds`` is the most it waits: a test can wait for a remote fake to catch up without
    betting on how fast a loaded machine is.
    """

    def __init__(self, seconds: float = 0.1, *, until: Callable[[], bool] | None = None) -> None:
        self.seconds = seconds
        self.until = until

    async def wait(self) -> None:
        if self.until is None:
            await asyncio.sleep(self.seconds)
            return
        deadline = time.monotonic() + self.seconds
        while True:  # polled: the condition lives in another process or a fake's counters
            if self.until() or time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.01)


async def run_test(
    processor: FrameProcessor,
    frames_to_send: Sequence[Frame],
    *,
    params: PipelineParams | None = None,
    send_end_frame: bool = True,
) -> tuple[list[Frame], list[Frame]]:
    """Send frames through ``processor``; return (frames out downstream, frames out upstream).

    The downstream list excludes the StartFrame and includes the final EndFrame.
    """
    down = FrameCollector(FrameDirection.DOWNSTREAM, name="collect-down")
    up = FrameCollector(FrameDirection.UPSTREAM, name="collect-up")
    task = PipelineTask(Pipeline([up, processor, down]), params=params, idle_timeout_secs=None)

    async def feed() -> None:
        for frame in frames_to_send:
            if isinstance(frame, SleepFrame):
                await frame.wait()
            else:
                await task.queue_frame(frame)
        if send_end_frame:
            await task.queue_frame(EndFrame())

    feeder = asyncio.get_running_loop().create_task(feed())
    await task.run()
    if not feeder.done():
        # The pipeline ended on its own (a fatal error cancels it): nothing more can be
        # delivered, so a SleepFrame still waiting need not run out.
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    else:
        await feeder
    return down.frames, up.frames
