"""Per-call accounting: one structured log line when a call ends."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("callpipe.calls")

_MALFORMED_LOG_LIMIT = 5


def mask(value: str | None) -> str | None:
    """Keep identifiers recognisable in logs without printing them whole."""
    if not value:
        return value
    if len(value) <= 6:
        return "***"
    return f"{value[:4]}…{value[-2:]}"


@dataclass
class CallStats:
    """Counters kept by the transport; cheap integer increments on the hot path."""

    call_id: str | None = None
    started_at: float | None = None
    messages_in: int = 0
    packets_in: int = 0
    packets_out: int = 0
    malformed: int = 0
    interruptions: int = 0
    end_reason: str | None = None
    malformed_kinds: dict[str, int] = field(default_factory=dict)

    def begin(self, now: float) -> None:
        self.started_at = now

    def note_malformed(self, kind: str) -> None:
        """Count a skipped message; log the first few of each kind (never the payload)."""
        self.malformed += 1
        count = self.malformed_kinds.get(kind, 0) + 1
        self.malformed_kinds[kind] = count
        if count <= _MALFORMED_LOG_LIMIT:
            logger.warning("call %s: skipped bad message: %s", mask(self.call_id), kind)

    def log_end(self, now: float, serializer: Any = None) -> None:
        duration = now - self.started_at if self.started_at is not None else 0.0
        counts = getattr(serializer, "malformed_counts", None) or {}
        malformed = self.malformed + sum(counts.values())
        provider = type(serializer).__name__.replace("FrameSerializer", "").lower() or "none"
        logger.info(
            "call ended: id=%s provider=%s duration=%.1fs reason=%s packets_in=%d "
            "packets_out=%d malformed=%d interruptions=%d",
            mask(self.call_id),
            provider,
            duration,
            self.end_reason or "unknown",
            self.packets_in,
            self.packets_out,
            malformed,
            self.interruptions,
            extra={
                "call_id": mask(self.call_id),
                "provider": provider,
                "duration_secs": round(duration, 3),
                "end_reason": self.end_reason,
                "packets_in": self.packets_in,
                "packets_out": self.packets_out,
                "malformed": malformed,
                "interruptions": self.interruptions,
            },
        )
