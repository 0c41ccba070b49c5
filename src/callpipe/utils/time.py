"""Time helpers Pipecat bots import (``utils.time``): ISO timestamps and ns/s conversions."""

from __future__ import annotations

from datetime import UTC, datetime


def time_now_iso8601() -> str:
    """Now, UTC, ISO 8601 with milliseconds (the format of transcription timestamps)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def seconds_to_nanoseconds(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def nanoseconds_to_seconds(nanoseconds: int) -> float:
    return nanoseconds / 1_000_000_000


def nanoseconds_to_str(nanoseconds: int) -> str:
    """``H:MM:SS.micro`` for logs."""
    total = nanoseconds / 1_000_000_000
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{int(hours)}:{int(minutes):02d}:{seconds:09.6f}"
