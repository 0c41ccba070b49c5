"""NullFilter: drops every frame except the lifecycle ones."""

from __future__ import annotations

from callpipe.frames.frames import CancelFrame, EndFrame, Frame, StartFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class NullFilter(FrameProcessor):
    """Passes only start, end and cancel frames (a branch whose output is not wanted)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame | EndFrame | CancelFrame):
            await self.push_frame(frame, direction)
