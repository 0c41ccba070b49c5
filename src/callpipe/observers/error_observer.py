"""Pipecat 1.x ``ErrorObserver``: one event per error, reported where it was raised.

An error travels upstream from the processor that raised it and may be absorbed on the way (a
service switcher failing over, say); this observer sees it at its first push, so recovered
errors are reported too, named after the processor that raised them.

Left out from Pipecat: ``ErrorEvent.category`` (callpipe does not classify errors; see
"Error categories" in docs/pipecat-1.14-engine.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from callpipe.frames.frames import ErrorFrame
from callpipe.observers.base_observer import BaseObserver, FramePushed
from callpipe.processors.frame_processor import FrameProcessor
from callpipe.utils.errors import ErrorCategory


class ErrorEvent(BaseModel):
    """One error: its message, the exception class behind it (if any), the processor that
    raised it and whether that processor can still work, when (Unix time), and why."""

    message: str
    exception_type: str | None = None
    processor: str
    processor_usable: bool
    fatal: bool = False
    timestamp: float
    category: ErrorCategory = ErrorCategory.UNKNOWN
    """Why it failed (the ``ErrorFrame``'s category; UNKNOWN when none was set)."""


class ErrorObserver(BaseObserver):
    """Event ``on_error(observer, event)`` with an :class:`ErrorEvent` for each error."""

    def __init__(self, *, time_source: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(observe_every_push=False, **kwargs)
        self._now = time_source
        self._register_event_handler("on_error")

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if not isinstance(frame, ErrorFrame):
            return
        # push_error names the processor; a hand-made ErrorFrame is put on whoever pushed it.
        processor = frame.processor if isinstance(frame.processor, FrameProcessor) else data.source
        event = ErrorEvent(
            message=frame.error,
            exception_type=type(frame.exception).__name__ if frame.exception else None,
            processor=processor.name,
            processor_usable=processor.is_usable,
            fatal=frame.fatal,
            timestamp=self._now(),
            category=frame.category or ErrorCategory.UNKNOWN,
        )
        await self._call_event_handler("on_error", event)
