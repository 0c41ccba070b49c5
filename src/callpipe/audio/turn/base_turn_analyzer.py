"""The end-of-turn analyzer interface, as Pipecat 1.14 defines it (names and signatures).

An analyzer is fed the caller's audio packet by packet (:meth:`BaseTurnAnalyzer.append_audio`,
which must stay cheap: it runs 50 times a second per call) and asked, when the VAD reports the
caller quiet, whether the turn is over (:meth:`BaseTurnAnalyzer.analyze_end_of_turn`, where the
expensive work belongs). ``append_audio`` may itself answer COMPLETE (e.g. after a long silence).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum

from pydantic import BaseModel

from callpipe.metrics.metrics import MetricsData


class EndOfTurnState(Enum):
    """COMPLETE: the caller finished their turn. INCOMPLETE: they may go on speaking."""

    COMPLETE = 1
    INCOMPLETE = 2


class BaseTurnParams(BaseModel):
    """Base of analyzer parameters."""


class BaseTurnAnalyzer(ABC):
    """Decides from the caller's audio whether their turn has ended."""

    def __init__(self, *, sample_rate: int | None = None) -> None:
        self._init_sample_rate = sample_rate
        self._sample_rate = 0

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def set_sample_rate(self, sample_rate: int) -> None:
        """Called at pipeline start with the input rate; a rate given to the constructor wins."""
        self._sample_rate = self._init_sample_rate or sample_rate

    @property
    @abstractmethod
    def speech_triggered(self) -> bool:
        """Whether speech was heard since the last completed turn."""

    @property
    @abstractmethod
    def params(self) -> BaseTurnParams:
        """The analyzer's parameters."""

    @abstractmethod
    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        """Take one packet of 16-bit mono PCM; ``is_speech`` is the VAD's current verdict."""

    @abstractmethod
    async def analyze_end_of_turn(self) -> tuple[EndOfTurnState, MetricsData | None]:
        """Decide on the audio so far (called when the VAD reports the caller quiet)."""

    def update_vad_start_secs(self, vad_start_secs: float) -> None:
        """The VAD's ``start_secs``: speech began that long before it was reported."""
        return None

    def update_vad_stop_secs(self, vad_stop_secs: float) -> None:
        """The VAD's ``stop_secs``: the audio ends with that much quiet (a callpipe addition)."""
        return None

    @abstractmethod
    def clear(self) -> None:
        """Forget the current turn."""

    async def cleanup(self) -> None:
        """Release resources (the analyzer may be used again afterwards)."""
        return None
