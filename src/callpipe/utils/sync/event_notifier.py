"""EventNotifier: a notifier on an asyncio.Event that re-arms itself after each wake-up."""

from __future__ import annotations

import asyncio

from callpipe.utils.sync.base_notifier import BaseNotifier


class EventNotifier(BaseNotifier):
    """``wait()`` returns once per ``notify()`` (a notify before the wait is not lost)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    async def notify(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event.clear()
