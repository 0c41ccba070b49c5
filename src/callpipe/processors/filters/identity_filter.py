"""IdentityFilter: passes every frame on unchanged (a placeholder, or a pipeline branch stub)."""

from __future__ import annotations

from callpipe.frames.frames import Frame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class IdentityFilter(FrameProcessor):
    """Passes everything, in order (a ``ParallelPipeline`` branch that keeps the input)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
