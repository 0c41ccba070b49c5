"""BaseAudioResampler: the async resampler interface Pipecat services and bots use."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

SoxrQuality = Literal["VHQ", "HQ", "MQ", "LQ", "QQ"]


class BaseAudioResampler(ABC):
    """``await resample(audio, in_rate, out_rate)`` on 16-bit mono PCM."""

    @abstractmethod
    async def resample(self, audio: bytes, in_rate: int, out_rate: int) -> bytes:
        """Convert ``audio`` from ``in_rate`` to ``out_rate``."""

    async def flush(self) -> bytes:
        """Return audio still held by a streaming resampler (nothing for one-shot ones)."""
        return b""

    async def reset(self) -> None:  # noqa: B027  (optional: one-shot resamplers hold nothing)
        """Forget held audio and filter history."""
