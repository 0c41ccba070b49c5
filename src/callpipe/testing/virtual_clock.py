"""A virtual-time event loop: every timer fires at once, in order, without waiting.

Pure-logic tests (timeouts, pacing, idle timers) run in milliseconds of real time. When the loop
has nothing ready to run and would block until its next timer, it jumps its clock forward to that
timer instead. Real I/O still works: sockets are polled without blocking before each jump.
Work handed to a thread with ``run_in_executor`` (``asyncio.to_thread``, the Silero engine's
model thread) runs in real time: while any is in flight the clock does not jump, so its result
lands at the virtual instant it was asked for, as on a fast machine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._virtual_loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self._virtual_loop.threads_in_flight:
            # A thread's result is due: wait for it (its wake-up is a socket event) in real time.
            return super().select(0.05 if timeout is None else min(timeout, 0.05))
        events = super().select(0)
        if events or timeout is None or timeout <= 0:
            if not events and timeout is None:
                return super().select(None)
            return events
        self._virtual_loop.advance(timeout)
        return []


class CountsThreadWork(asyncio.SelectorEventLoop):
    """A selector loop that counts work handed to threads with ``run_in_executor``."""

    threads_in_flight = 0
    """Calls handed to ``run_in_executor`` (or counted by the subclass) that have not landed."""

    def run_in_executor(  # type: ignore[override]
        self, executor: concurrent.futures.Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        job = super().run_in_executor(executor, func, *args)
        self.threads_in_flight += 1
        job.add_done_callback(self._thread_done)
        return job

    def _thread_done(self, _job: asyncio.Future[Any]) -> None:
        self.threads_in_flight -= 1


class VirtualTimeLoop(CountsThreadWork):
    """An event loop whose ``time()`` is virtual and jumps to the next timer when idle."""

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
