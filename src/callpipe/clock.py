"""Time for callpipe: one abstraction so pacing and timeouts run on a virtual clock in tests.

All time in callpipe is event-loop time (``loop.time()``), so a loop whose clock is virtual
(``callpipe.testing.VirtualClock`` or any time-travelling loop) drives every timer at once.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Clock(Protocol):
    """What callpipe needs from time."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``now() >= deadline`` (returns at once if already past)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds``."""
        ...


class LoopClock:
    """The default clock: the running event loop's monotonic time.

    It looks the loop up on every read. On Python 3.11 that lookup costs a ``getpid`` system
    call, so a pipeline binds it to its loop when it starts (:meth:`bound`).
    """

    __slots__ = ()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def bound(self, loop: asyncio.AbstractEventLoop) -> Clock:
        """The same clock with ``loop`` looked up once (for code that runs on ``loop`` only)."""
        return BoundLoopClock(loop)

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - self.now()
        await asyncio.sleep(delay if delay > 0 else 0)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds if seconds > 0 else 0)


class BoundLoopClock(LoopClock):
    """:class:`LoopClock` for one loop: ``now()`` is ``loop.time()`` with no lookup."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def now(self) -> float:
        return self.loop.time()


DEFAULT_CLOCK: LoopClock = LoopClock()
