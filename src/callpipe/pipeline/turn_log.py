"""Per-turn reports: what the caller said, what the bot said, and how long it took.

Two consumers, one observer (:class:`TurnLogObserver`), added by :class:`PipelineTask` only
when one of them is present, so a user's bot gets them without changing its code and the
per-frame path is untouched otherwise:

- the runner's ``-v`` enables the ``callpipe.turns`` logger at DEBUG: one line per turn
  (transcripts never go to INFO; long digit runs — phone or card numbers — are masked);
- :data:`TURN_EVENTS`, set by the runner around ``bot()`` for a softphone call, receives the
  same facts as small dicts (see :class:`TurnEvent`) which the softphone page displays.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

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


TurnEvent = dict[str, Any]
"""``{"type": "caller", "text": str}`` (a final transcript), ``{"type": "bot", "text": str}``
(what the bot said, once its audio has played), ``{"type": "latency", "secs": float,
"vad_wait": float, "first_byte": {"STT"|"LLM"|"TTS": float}}`` (caller went quiet → bot audio)."""

TURN_EVENTS: ContextVar[Callable[[TurnEvent], None] | None] = ContextVar(
    "callpipe_turn_events", default=None
)
"""Where a task built in this context sends :data:`TurnEvent`\\ s (None: nowhere)."""


def turn_logging_enabled() -> bool:
    """True when the turn logger itself is set to DEBUG (``-v`` does it). A DEBUG level inherited
    from ``callpipe`` does not count: the observer watches every frame hop of every call, so it
    is switched on by name, not as a side effect of general debug logging."""
    return logging.NOTSET < logger.level <= logging.DEBUG


def turn_observer() -> TurnLogObserver | None:
    """The observer a new task should add, or None when nobody wants turn reports."""
    sink = TURN_EVENTS.get()
    log = turn_logging_enabled()
    if sink is None and not log:
        return None
    return TurnLogObserver(emit=sink, log=log)


class TurnLogObserver:
    """Watches frames between processors and logs one line per caller turn, bot turn and
    latency. Each frame is seen at every hop, so frames are counted once by id."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        emit: Callable[[TurnEvent], None] | None = None,
        log: bool = True,
    ) -> None:
        self._clock = clock
        self._emit = emit
        self._log = log
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
            if self._log:
                logger.debug("%scaller said: %r", call_tag(), _short(frame.text))
            self._send({"type": "caller", "text": frame.text.strip()})
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
        if self._log:
            parts = [f"VAD wait {self._vad_wait:.2f}s"]
            parts += [f"{kind} first byte {secs:.2f}s" for kind, secs in self._ttfb.items()]
            logger.debug(
                "%slatency: %.2fs caller quiet → bot audio (%s)",
                call_tag(),
                total,
                ", ".join(parts),
            )
        self._send(
            {
                "type": "latency",
                "secs": round(total, 3),
                "vad_wait": round(self._vad_wait, 3),
                "first_byte": {k: round(v, 3) for k, v in self._ttfb.items()},
            }
        )
        self._quiet_at = None

    def _log_bot_text(self) -> None:
        if not self._bot_text:
            return
        text = " ".join(t.strip() for t in self._bot_text if t.strip())
        self._bot_text.clear()
        if self._log:
            logger.debug("%sbot said: %r", call_tag(), _short(text))
        self._send({"type": "bot", "text": text})

    def _send(self, event: TurnEvent) -> None:
        if self._emit is not None:
            try:
                self._emit(event)
            except Exception:  # a display must never break a call
                logger.debug("turn event sink failed", exc_info=True)


def _short(text: str) -> str:
    text = mask_numbers(text.strip())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _service_kind(processor: str) -> str:
    lowered = processor.lower()
    for kind in ("stt", "llm", "tts"):
        if kind in lowered:
            return kind.upper()
    return processor
