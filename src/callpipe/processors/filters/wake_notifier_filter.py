"""WakeNotifierFilter: wake a notifier when a frame of interest passes and a check agrees."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from callpipe.frames.frames import Frame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.utils.sync.base_notifier import BaseNotifier


class WakeNotifierFilter(FrameProcessor):
    """Calls ``await notifier.notify()`` for each frame of ``types`` for which
    ``await filter(frame)`` is true. Every frame passes on unchanged (it filters the
    notifications, not the frames); pair it with a processor waiting on the same notifier.
    """

    def __init__(
        self,
        notifier: BaseNotifier,
        *,
        types: tuple[type[Frame], ...],
        filter: Callable[[Frame], Awaitable[bool]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._notifier = notifier
        self._types = tuple(types)
        self._filter = filter

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, self._types) and await self._filter(frame):
            await self._notifier.notify()
        await self.push_frame(frame, direction)
