"""Inputs and the timing loop shared by both sides of serializer_bench.py (stdlib only, runs in
either venv), so both stacks are measured with the very same loop."""

from __future__ import annotations

import base64
import json
import math
import struct

from _audio_bench_common import best_rate_each as rate  # the one timing loop of both sides

__all__ = ["STREAM_SID", "media_message", "pcm_chunk", "rate"]

STREAM_SID = "MZ0123456789abcdef0123456789abcdef"


def pcm_chunk(rate: int, ms: int = 20) -> bytes:
    """A 440 Hz tone, ``ms`` milliseconds of PCM16 at ``rate``."""
    n = rate * ms // 1000
    return struct.pack(
        f"<{n}h", *(int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n))
    )


def media_message() -> str:
    """A Twilio inbound media message as Twilio sends it (compact JSON, 160 µ-law bytes)."""
    ulaw = bytes((i * 37) & 0xFF for i in range(160))
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": "4",
            "media": {
                "track": "inbound",
                "chunk": "2",
                "timestamp": "20",
                "payload": base64.b64encode(ulaw).decode(),
            },
            "streamSid": STREAM_SID,
        },
        separators=(",", ":"),
    )
