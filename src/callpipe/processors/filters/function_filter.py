"""FunctionFilter: pass frames for which an async predicate says yes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from callpipe.frames.frames import CancelFrame, EndFrame, Frame, StartFrame, SystemFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

FilterType = Callable[[Frame], Awaitable[bool]]


class FunctionFilter(FrameProcessor):
    """Lets a frame through when ``await filter(frame)`` is true.

    Only frames moving in ``direction`` are filtered (``None``: both ways). Start, end and
    cancel frames always pass; other system frames pass unless ``filter_system_frames``.
    """

    def __init__(
        self,
        filter: FilterType,
        direction: FrameDirection | None = FrameDirection.DOWNSTREAM,
        filter_system_frames: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._filter = filter
        self._direction = direction
        self._filter_system_frames = filter_system_frames

    def _exempt(self, frame: Frame, direction: FrameDirection) -> bool:
        if self._direction is not None and direction is not self._direction:
            return True
        if isinstance(frame, StartFrame | EndFrame | CancelFrame):
            return True
        return not self._filter_system_frames and isinstance(frame, SystemFrame)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if self._exempt(frame, direction) or await self._filter(frame):
            await self.push_frame(frame, direction)
