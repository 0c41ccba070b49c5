"""Pipecat 1.x ``DebugLogObserver``: one DEBUG log line per frame hop, with the frame's fields.

For debugging a pipeline: it is called for every push of every frame it is attached to, so
leave it out of production calls (or narrow it with ``frame_types``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from enum import Enum, auto
from typing import Any

from callpipe.frames.frames import Frame
from callpipe.observers.base_observer import BaseObserver, FramePushed
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)

DEFAULT_EXCLUDED_FIELDS = frozenset({"audio", "image", "images"})
"""Fields left out of log lines unless ``exclude_fields`` says otherwise (binary payloads)."""

_MAX_LISTED_MESSAGES = 3  # longer lists of dicts (LLM messages) are logged as a count

FrameFilter = tuple[type, "FrameEndpoint"] | None
"""``None``: every frame of the type; ``(ProcessorType, endpoint)``: only hops whose source or
destination (``endpoint``) is an instance of ``ProcessorType``."""


class FrameEndpoint(Enum):
    """Which end of a hop a ``(ProcessorType, endpoint)`` filter looks at."""

    SOURCE = auto()
    DESTINATION = auto()


class DebugLogObserver(BaseObserver):
    """Logs frames as they move between processors, with their fields.

    ``frame_types``: None logs every frame; a tuple of frame types logs those (subclasses
    included); a dict maps frame types to a filter: ``None`` (log them all) or
    ``(ProcessorType, FrameEndpoint.SOURCE | FrameEndpoint.DESTINATION)`` (log only hops from /
    to such a processor). ``exclude_fields``: field names never logged (default: audio, image,
    images); bytes are logged as their length.
    """

    def __init__(
        self,
        frame_types: tuple[type[Frame], ...] | Mapping[type[Frame], FrameFilter] | None = None,
        exclude_fields: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.frame_filters: dict[type[Frame], FrameFilter] = {}
        if isinstance(frame_types, tuple):
            self.frame_filters = dict.fromkeys(frame_types)
        elif frame_types is not None:
            self.frame_filters = dict(frame_types)
        self.exclude_fields: set[str] = (
            set(exclude_fields) if exclude_fields is not None else set(DEFAULT_EXCLUDED_FIELDS)
        )

    async def on_push_frame(self, data: FramePushed) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return  # no line would be written: skip the filters and the field formatting
        if not self._wanted(data.frame, data.source, data.destination):
            return
        arrow = "→" if data.direction is FrameDirection.DOWNSTREAM else "←"
        details = self._details(data.frame)
        seconds = data.timestamp / 1_000_000_000
        what = type(data.frame).__name__
        if details:
            what = f"{what} {details}"
        logger.debug("%s %s %s: %s at %.2fs", data.source, arrow, data.destination, what, seconds)

    def _wanted(self, frame: Frame, src: FrameProcessor, dst: FrameProcessor) -> bool:
        if not self.frame_filters:
            return True
        for frame_type, where in self.frame_filters.items():
            if not isinstance(frame, frame_type):
                continue
            if where is None:
                return True
            processor_type, endpoint = where
            end = src if endpoint is FrameEndpoint.SOURCE else dst
            return isinstance(end, processor_type)
        return False

    def _details(self, frame: Frame) -> str:
        if not is_dataclass(frame):
            return ""
        parts = []
        for f in fields(frame):
            if f.name.startswith("_") or f.name in self.exclude_fields:
                continue
            value = getattr(frame, f.name)
            if value is None:
                continue
            parts.append(f"{f.name}: {_format(value)}")
        return ", ".join(parts)


def _format(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{len(value)} bytes"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        if len(value) > _MAX_LISTED_MESSAGES and isinstance(value[0], dict):
            return f"{len(value)} items"
    return str(value)
