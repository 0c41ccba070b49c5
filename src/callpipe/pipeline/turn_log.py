"""Readable per-turn log lines: what the caller said, what the bot said, and how long it took.

The runner's ``-v`` enables the ``callpipe.turns`` logger at DEBUG; a :class:`PipelineTask`
built while it is enabled adds a :class:`TurnLogObserver`, so a user's bot gets the lines without
changing its code. Lines are DEBUG (transcripts never go to INFO) and long digit runs — phone
numbers, card numbers — are masked. Without ``-v`` nothing is installed and the per-frame path
is untouched.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    MetricsFrame,
    TranscriptionFrame,
    TTSTextFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.log import call_tag
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

TURN_LOGGER = "callpipe.turns"

logger = logging.getLogger(TURN_LOGGER)

_DIGIT_RUN = re.compile(r"\+?\d(?:[\d\s().-]{4,}\d)")
_MAX_TEXT = 200


def mask_numbers(text: str) -> str:
    """Hide all but the last two digits of any run of 6+ digits (phone, card, account)."""

    def hide(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        if len(digits) < 6:
            return match.group()
        return "…" + digits[-2:]

    return _DIGIT_RUN.sub(hide, text)


def turn_logging_enabled() -> bool:
    return logger.isEnabledFor(logging.DEBUG)


class TurnLogObserver:
    """Watches frames between processors and logs one line per caller turn, bot turn and
    latency. Each frame is seen at every hop, so frames are counted once by id."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: deque[int] = deque(maxlen=64)
        self._quiet_at: float | None = None
        self._vad_wait = 0.0
        self._ttfb: dict[str, float] = {}
        self._bot_text: list[str] = []
        self._turn = 0

    def on_push_frame(
        self, src: FrameProcessor, dst: FrameProcessor, frame: Frame, direction: FrameDirection
    ) -> None:
        if not isinstance(
            frame,
            TranscriptionFrame
            | TTSTextFrame
            | VADUserStoppedSpeakingFrame
            | BotStartedSpeakingFrame
            | BotStoppedSpeakingFrame
            | MetricsFrame,
        ):
            return
        if frame.id in self._seen:
            return
        self._seen.append(frame.id)
        if isinstance(frame, TranscriptionFrame):
            self._turn += 1
            logger.debug("%scaller said: %r", call_tag(), _short(frame.text))
        elif isinstance(frame, TTSTextFrame):
            self._bot_text.append(frame.text)
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._vad_wait = frame.stop_secs
            self._quiet_at = self._clock() - frame.stop_secs
            self._ttfb.clear()
        elif isinstance(frame, MetricsFrame):
            for data in frame.data:
                if isinstance(data, TTFBMetricsData) and self._quiet_at is not None:
                    self._ttfb[_service_kind(data.processor)] = data.value
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._log_latency()
        else:
            self._log_bot_text()

    def _log_latency(self) -> None:
        if self._quiet_at is None:
            return
        total = self._clock() - self._quiet_at
        parts = [f"VAD wait {self._vad_wait:.2f}s"]
        parts += [f"{kind} first byte {secs:.2f}s" for kind, secs in self._ttfb.items()]
        logger.debug(
            "%slatency: %.2fs caller quiet → bot audio (%s)", call_tag(), total, ", ".join(parts)
        )
        self._quiet_at = None

    def _log_bot_text(self) -> None:
        if not self._bot_text:
            return
        text = " ".join(t.strip() for t in self._bot_text if t.strip())
        self._bot_text.clear()
        logger.debug("%sbot said: %r", call_tag(), _short(text))


def _short(text: str) -> str:
    text = mask_numbers(text.strip())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _service_kind(processor: str) -> str:
    lowered = processor.lower()
    for kind in ("stt", "llm", "tts"):
        if kind in lowered:
            return kind.upper()
    return processor
