"""Pipecat 1.x ``TranscriptionLogObserver``: a DEBUG log line per transcript, final or interim.

Each transcript is logged once, where it was made (by the STT service); Pipecat selects STT
services by type, which callpipe's observers, sitting below the services, cannot import.
Transcripts carry what the caller said: keep DEBUG logs of real calls private.
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.frames.frames import InterimTranscriptionFrame, TranscriptionFrame
from callpipe.observers.base_observer import BaseObserver, FramePushed

logger = logging.getLogger(__name__)


class TranscriptionLogObserver(BaseObserver):
    """Logs ``TranscriptionFrame`` and ``InterimTranscriptionFrame`` with text and user id."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(observe_every_push=False, **kwargs)

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, TranscriptionFrame):
            kind = "TRANSCRIPTION"
        elif isinstance(frame, InterimTranscriptionFrame):
            kind = "INTERIM TRANSCRIPTION"
        else:
            return
        logger.debug(
            "%s → %s: %r from %r at %.2fs",
            data.source,
            kind,
            frame.text,
            frame.user_id,
            data.timestamp / 1_000_000_000,
        )
