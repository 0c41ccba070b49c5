"""FrameLogger: write every frame that passes to the log, for debugging a pipeline.

Pipecat logs through loguru with optional colours; callpipe uses the standard ``logging``
module (logger ``callpipe.processors.logger``, level DEBUG), so ``color`` is accepted and
ignored. Frames are only formatted when DEBUG is enabled for that logger.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from callpipe.frames.frames import (
    AudioRawFrame,
    BotSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    UserSpeakingFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)

DEFAULT_IGNORED_FRAME_TYPES: tuple[type[Frame], ...] = (
    BotSpeakingFrame,
    UserSpeakingFrame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
)
"""Frames sent many times a second; logging them would drown everything else."""


def _describe(frame: Frame) -> str:
    if isinstance(frame, AudioRawFrame):  # the bytes would fill the log
        return f"{frame.name}({len(frame.audio)} bytes, {frame.sample_rate} Hz)"
    return repr(frame)


class FrameLogger(FrameProcessor):
    """Logs each frame (``> prefix: frame`` downstream, ``< prefix: frame`` upstream) and
    passes it on unchanged. Frames of ``ignored_frame_types`` pass without a log line.
    """

    def __init__(
        self,
        prefix: str = "Frame",
        color: str | None = None,
        ignored_frame_types: tuple[type[Frame], ...] = DEFAULT_IGNORED_FRAME_TYPES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._prefix = prefix
        self._color = color  # loguru markup in Pipecat; plain logging has no colours
        self._ignored = tuple(ignored_frame_types)

    passes_input_audio: ClassVar[bool] = True

    def input_audio_unused(self) -> bool:
        # Caller audio that would not be logged may step over this processor.
        return issubclass(InputAudioRawFrame, self._ignored)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if logger.isEnabledFor(logging.DEBUG) and not isinstance(frame, self._ignored):
            arrow = "<" if direction is FrameDirection.UPSTREAM else ">"
            logger.debug("%s %s: %s", arrow, self._prefix, _describe(frame))
        await self.push_frame(frame, direction)
