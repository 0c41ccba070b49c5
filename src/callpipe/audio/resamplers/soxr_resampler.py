"""SOXRAudioResampler: resample each call on its own (whole clips, files)."""

from __future__ import annotations

from typing import Any

from callpipe.audio.resample import resample_once
from callpipe.audio.resamplers.base_audio_resampler import BaseAudioResampler, SoxrQuality


class SOXRAudioResampler(BaseAudioResampler):
    """Each call is a complete clip: no state, no start delay (soxr, very high quality).

    ``quality`` is accepted for compatibility; clips are always converted at soxr's VHQ.
    """

    def __init__(self, *, quality: SoxrQuality = "VHQ", **kwargs: Any) -> None:
        self.quality = quality

    async def resample(self, audio: bytes, in_rate: int, out_rate: int) -> bytes:
        return resample_once(audio, in_rate, out_rate)
