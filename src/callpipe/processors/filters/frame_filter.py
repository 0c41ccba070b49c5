"""FrameFilter: pass only frames of the given types (plus system frames and EndFrame)."""

from __future__ import annotations

from typing import Any

from callpipe.frames.frames import EndFrame, Frame, SystemFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class FrameFilter(FrameProcessor):
    """Drops data/control frames that are not one of ``types``.

    System frames and ``EndFrame`` always pass: dropping them would break the pipeline's
    lifecycle (start, cancel, end) and barge-in.
    """

    def __init__(self, types: tuple[type[Frame], ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._types = tuple(types)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, self._types) or isinstance(frame, SystemFrame | EndFrame):
            await self.push_frame(frame, direction)
