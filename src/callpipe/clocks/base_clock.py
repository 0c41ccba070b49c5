"""BaseClock: Pipecat's clock interface (integer time, started explicitly)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class BaseClock(ABC):
    """A clock read as an integer (the unit is the implementation's) after :meth:`start`."""

    @abstractmethod
    def get_time(self) -> int:
        """The current time; the unit and zero point depend on the clock."""

    @abstractmethod
    def start(self) -> None:
        """Start counting (call before :meth:`get_time`)."""
