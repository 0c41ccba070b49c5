"""SOXRStreamAudioResampler: one continuous stream, steady output, no clicks between chunks."""

from __future__ import annotations

import time
from typing import Any

from callpipe.audio.resample import StreamResampler
from callpipe.audio.resamplers.base_audio_resampler import BaseAudioResampler, SoxrQuality

CLEAR_STREAM_AFTER_SECS = 0.2


class SOXRStreamAudioResampler(BaseAudioResampler):
    """Resamples consecutive chunks of one stream, keeping filter state between calls.

    Backed by :class:`~callpipe.audio.resample.StreamResampler` (soxr, or the exact half-band
    filter for 2:1 pairs). A pause longer than ``CLEAR_STREAM_AFTER_SECS`` starts a fresh
    stream, so a new utterance does not begin with the tail of the previous one. A change of
    rates starts a new stream too. ``quality`` is accepted for compatibility.
    """

    def __init__(self, *, quality: SoxrQuality = "VHQ", **kwargs: Any) -> None:
        self.quality = quality
        self._stream: StreamResampler | None = None

    async def resample(self, audio: bytes, in_rate: int, out_rate: int) -> bytes:
        if in_rate == out_rate:
            return audio
        stream = self._stream
        if stream is None or stream.in_rate != in_rate or stream.out_rate != out_rate:
            stream = self._stream = StreamResampler(
                in_rate, out_rate, clear_after_secs=CLEAR_STREAM_AFTER_SECS
            )
        return stream.resample(audio, now=time.monotonic())

    async def flush(self) -> bytes:
        return self._stream.flush() if self._stream is not None else b""

    async def reset(self) -> None:
        if self._stream is not None:
            self._stream.reset()
