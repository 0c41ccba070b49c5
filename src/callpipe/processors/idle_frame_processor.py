"""IdleFrameProcessor: call back when no frame (or no frame of some types) came for a while."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from callpipe.frames.frames import CancelFrame, EndFrame, Frame, StartFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)


class IdleFrameProcessor(FrameProcessor):
    """Runs ``await callback(self)`` each time ``timeout`` seconds pass without activity.

    Activity is any frame passing through, or with ``types`` only frames of those types. The
    watch starts with the ``StartFrame`` and repeats (one call per quiet ``timeout``) until
    the pipeline ends or is cancelled. For the caller's silence on a phone call,
    :class:`~callpipe.processors.user_idle_processor.UserIdleProcessor` is the better fit: it
    counts from the end of the bot's playback.
    """

    def __init__(
        self,
        *,
        callback: Callable[[IdleFrameProcessor], Awaitable[None]],
        timeout: float,
        types: list[type[Frame]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._callback = callback
        self._timeout = timeout
        self._types = tuple(types or ())
        self._last_activity = 0.0
        self._watch: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame) and self._watch is None:
            self._last_activity = self.clock.now()
            self._watch = self.create_task(self._watch_idle(), "idle")
        elif isinstance(frame, EndFrame | CancelFrame):
            await self.cancel_task(self._watch)
        await self.push_frame(frame, direction)
        if not self._types or isinstance(frame, self._types):
            self._last_activity = self.clock.now()

    async def _watch_idle(self) -> None:
        # Timestamps, not an event with a timeout: one clock read per frame, and no wakeup
        # per frame (a timer is rearmed only when the previous deadline passes).
        clock = self.clock
        while True:
            deadline = self._last_activity + self._timeout
            if clock.now() < deadline:
                await clock.sleep_until(deadline)
                continue
            logger.debug("%s: idle for %.1fs", self, self._timeout)
            try:
                await self._callback(self)
            except Exception:  # a failing callback must not end the watch
                logger.exception("%s: idle callback failed", self)
            self._last_activity = clock.now()
