"""Run one processor in a throwaway pipeline and collect what comes out of each end."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

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
    """Not a real frame: tells :func:`run_test` to wait before sending the next frame."""

    def __init__(self, seconds: float = 0.1) -> None:
        self.seconds = seconds


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
                await asyncio.sleep(frame.seconds)
            else:
                await task.queue_frame(frame)
        if send_end_frame:
            await task.queue_frame(EndFrame())

    feeder = asyncio.get_running_loop().create_task(feed())
    await task.run()
    await feeder
    return down.frames, up.frames
