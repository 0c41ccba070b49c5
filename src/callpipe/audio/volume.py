"""Loudness of a PCM chunk as a number in [0, 1], the scale of ``VADParams.min_volume``.

The value is the RMS level in dBFS mapped linearly from [−110, −10] dBFS to [0, 1] and clamped,
so ``min_volume=0.6`` means −50 dBFS RMS — the same point on the scale Pipecat's ``min_volume``
uses (≈ −50 LUFS / dBFS), so tuned values carry over. Plain RMS is used instead of BS.1770
loudness: K-weighting costs a filter per window and gating needs 400 ms of history, which would
keep VAD from ever starting in the first 400 ms of a call. Typical phone speech is −35…−15 dBFS
(0.75–0.95); line noise and comfort noise sit below −55 dBFS (< 0.55).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["AudioVolumeTracker", "calculate_volume", "rms_dbfs"]

_FLOOR_DB = -110.0
_CEIL_DB = -10.0
_FULL_SCALE_SQ = 32768.0 * 32768.0
# Digital silence (µ-law 0xFF, what carriers send for a quiet or muted leg, and most of a
# caller's audio while the bot talks) is recognised by one byte comparison against this
# instead of the arithmetic below: the VAD measures every 32 ms window of every call.
_ZEROS = bytes(4096)


def rms_dbfs(pcm: bytes) -> float:
    """RMS level of 16-bit PCM in dB relative to full scale (−inf for silence or empty input)."""
    count = len(pcm) // 2
    if count == 0 or _ZEROS.startswith(pcm):
        return -math.inf
    samples = np.frombuffer(pcm, dtype="<i2", count=count).astype(np.float32)
    mean_square = float(np.dot(samples, samples)) / count
    if mean_square <= 0.0:
        return -math.inf
    return 10.0 * math.log10(mean_square / _FULL_SCALE_SQ)


def calculate_volume(pcm: bytes, sample_rate: int) -> float:
    """Normalised loudness in [0, 1] (see the module docstring for the scale).

    ``sample_rate`` is accepted for API compatibility; an RMS level does not depend on it.
    """
    del sample_rate
    level = rms_dbfs(pcm)
    if level == -math.inf:
        return 0.0
    return min(1.0, max(0.0, (level - _FLOOR_DB) / (_CEIL_DB - _FLOOR_DB)))


VOLUME_WINDOW_SECS = 0.4


class AudioVolumeTracker:
    """Loudness of the last :data:`VOLUME_WINDOW_SECS` of a stream, fed in chunks of any size.

    ``volume`` is measured when read and cached until more audio arrives (most callers read
    less often than they feed); it reads 0 until the window is full. A change of sample rate
    starts a new window.
    """

    def __init__(self) -> None:
        self._sample_rate = 0
        self._window_bytes = 0
        self._buffer = bytearray()
        self._volume: float | None = 0.0

    @property
    def volume(self) -> float:
        if self._volume is None:
            full = len(self._buffer) >= self._window_bytes > 0
            self._volume = calculate_volume(bytes(self._buffer), self._sample_rate) if full else 0.0
        return self._volume

    def update(self, audio: bytes, sample_rate: int) -> None:
        if sample_rate != self._sample_rate:
            self._sample_rate = sample_rate
            self._window_bytes = int(VOLUME_WINDOW_SECS * sample_rate) * 2
            self._buffer.clear()
        self._buffer += audio[: len(audio) & ~1]
        excess = len(self._buffer) - self._window_bytes
        if excess > 0:
            del self._buffer[:excess]
        self._volume = None

    def reset(self) -> None:
        self._buffer.clear()
        self._volume = 0.0
