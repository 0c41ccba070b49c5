"""BaseNotifier: one side waits, the other notifies (e.g. a gate opened by another processor)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class BaseNotifier(ABC):
    @abstractmethod
    async def notify(self) -> None:
        """Wake the waiter."""

    @abstractmethod
    async def wait(self) -> None:
        """Wait until notified."""
