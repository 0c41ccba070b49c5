"""AudioHook protocol pieces shared by the Genesys serializer and its simulator dialect.

Plain values only: ISO-8601 durations (``PT1.25S``), the media offer/selection, channel
extraction from interleaved frames. See :mod:`callpipe.serializers.genesys` for the protocol.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Any

import numpy as np

PROTOCOL_VERSION = "2"
SAMPLE_RATE = 8000

_DURATION = re.compile(r"PT(\d{1,9}(?:\.\d{1,9})?)S")


class AudioHookChannel(StrEnum):
    """Which audio the bot asks Genesys for: the caller, the agent, or both (stereo)."""

    EXTERNAL = "external"
    INTERNAL = "internal"
    BOTH = "both"


class AudioHookMediaFormat(StrEnum):
    """Audio formats AudioHook names; callpipe streams PCMU (L16 is refused at ``open``)."""

    PCMU = "PCMU"
    L16 = "L16"


def format_duration(seconds: float) -> str:
    """A non-negative duration as AudioHook writes it: ``PT<seconds>S``."""
    text = f"{max(0.0, seconds):.3f}".rstrip("0").rstrip(".")
    return f"PT{text or '0'}S"


def parse_duration(value: Any) -> timedelta | None:
    """``PT<seconds>S`` as a timedelta; None for anything else (never raises)."""
    if not isinstance(value, str):
        return None
    match = _DURATION.fullmatch(value)
    return timedelta(seconds=float(match[1])) if match else None


def wanted_channels(channel: AudioHookChannel) -> list[str]:
    if channel is AudioHookChannel.BOTH:
        return ["external", "internal"]
    return [channel.value]


def select_media(offered: Any, channel: AudioHookChannel) -> dict[str, Any] | None:
    """The offered PCMU 8 kHz audio entry to accept, or None if none fits.

    An exact match of the wanted channels wins; otherwise any PCMU offer that carries every
    wanted channel (a stereo offer serves a mono wish: the transport extracts the channel).
    """
    if not isinstance(offered, list):
        return None
    wanted = wanted_channels(channel)
    usable: list[dict[str, Any]] = []
    for entry in offered[:16]:
        if not isinstance(entry, dict):
            continue
        channels = entry.get("channels")
        if (
            entry.get("type") == "audio"
            and entry.get("format") == AudioHookMediaFormat.PCMU.value
            and entry.get("rate") == SAMPLE_RATE
            and isinstance(channels, list)
            and 0 < len(channels) <= 2
            and all(c in ("external", "internal") for c in channels)
            and len(set(channels)) == len(channels)
        ):
            usable.append(entry)
    for entry in usable:
        if entry["channels"] == wanted:
            return entry
    for entry in usable:
        if all(c in entry["channels"] for c in wanted):
            return entry
    return None


def channel_columns(data: bytes, channels: int, columns: list[int]) -> list[bytes]:
    """The given channels of an interleaved 8-bit (µ-law) frame, each as its own byte string."""
    if channels == 1:
        return [data]
    frames = np.frombuffer(data, dtype=np.uint8).reshape(-1, channels)
    return [frames[:, c].tobytes() for c in columns]


def mix_pcm(tracks: list[bytes]) -> bytes:
    """The mean of equally long PCM16 tracks."""
    if len(tracks) == 1:
        return tracks[0]
    stacked = np.stack([np.frombuffer(t, dtype="<i2").astype(np.int32) for t in tracks])
    mixed: bytes = (stacked.sum(axis=0) // len(tracks)).astype("<i2").tobytes()
    return mixed
