"""Per-call accounting: one structured log line when a call ends."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from callpipe.log import mask


class _Counted(Protocol):
    """What the call-end line reads from a serializer (see ``transports.seams``)."""

    malformed_counts: dict[str, int]


logger = logging.getLogger("callpipe.calls")


def provider_name(serializer: Any) -> str:
    """``TwilioFrameSerializer`` → ``twilio`` (``none`` without a serializer)."""
    if serializer is None:
        return "none"
    return type(serializer).__name__.replace("FrameSerializer", "").lower() or "none"


@dataclass
class CallStats:
    """Counters kept by the transport; cheap integer increments on the hot path."""

    call_id: str | None = None
    provider: str = "none"
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

    def note_malformed(self, kind: str, detail: str = "") -> None:
        """Count a skipped message; log the first of each kind (never the payload).

        ``kind`` must be a fixed label (a flood of varied messages must not become a flood of
        log lines); the variable part goes in ``detail``.
        """
        self.malformed += 1
        count = self.malformed_kinds.get(kind, 0) + 1
        self.malformed_kinds[kind] = count
        if count == 1:
            logger.warning(
                "call %s (%s): skipped bad message (%s) %s; further ones are counted",
                mask(self.call_id),
                self.provider,
                kind,
                detail,
            )

    def log_end(self, now: float, serializer: _Counted | None = None) -> None:
        duration = now - self.started_at if self.started_at is not None else 0.0
        counts = serializer.malformed_counts if serializer is not None else {}
        malformed = self.malformed + sum(counts.values())
        provider = self.provider
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
