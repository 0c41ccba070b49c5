"""Virtual time for whole simulated calls: a real server, real sockets, no real-time waiting.

A simulated call is mostly waiting: 20 ms packet timers, the bot's paced audio, quiet gaps,
timeouts. :class:`VirtualCallLoop` jumps its clock to the next timer whenever nothing is ready,
so a 10 s call runs in a fraction of a second while the uvicorn server, the transport, the
pipeline and the simulator still talk over real loopback sockets (loopback TCP delivers a write
to the peer's receive buffer within the ``send`` call, so polling without blocking sees it).

It differs from :class:`~callpipe.testing.virtual_clock.VirtualTimeLoop` in three ways that
whole calls need:

- Work handed to a thread with ``loop.run_in_executor`` (``asyncio.to_thread``: eSpeak, model
  loads) runs in real time: while any is in flight the loop blocks for real and its clock moves
  by the real time waited, so a timeout cannot fire just because the clock jumped past a thread
  (``VirtualTimeLoop`` only stops its clock meanwhile). Work on a private pool awaited through
  ``asyncio.wrap_future`` (local Whisper) counts too: :func:`run_virtual_call` wraps that
  function while the loop runs.
- Timers fire strictly after their time and a busy loop moves the clock by 1 ns per idle poll,
  so code that waits for ``deadline - now`` (a float that can be one ULP above zero) cannot spin
  forever with the clock standing still.
- Tests stay ordinary functions: :func:`virtual_time` runs an ``async def`` test on a fresh
  loop, so its timing assertions are checked against the virtual clock, exactly and without load
  flakes. CPU time is free on this clock, so such a test says nothing about speed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import selectors
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from callpipe.testing.virtual_clock import CountsThreadWork

T = TypeVar("T")
P = ParamSpec("P")

_TICK = 1e-9
"""How far an idle poll with work ready moves the clock (a real clock ticks between polls)."""


class _CallSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualCallLoop) -> None:
        super().__init__()
        self._virtual_loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events:
            return events
        loop = self._virtual_loop
        if timeout is not None and timeout <= 0:
            loop.advance(_TICK)
            return events
        if timeout is None or loop.threads_in_flight:
            started = time.monotonic()
            events = super().select(timeout)
            loop.advance(time.monotonic() - started)
            return events
        loop.advance(timeout)
        return []


class VirtualCallLoop(CountsThreadWork):
    """An event loop whose clock is virtual, for whole simulated calls (see module docstring)."""

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(selector=_CallSelector(self))
        self._clock_resolution = 0.0  # a timer is due only once the clock has passed it

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


_wrap_future = asyncio.wrap_future


def _tracked_wrap_future(
    future: concurrent.futures.Future[T] | asyncio.Future[T],
    *,
    loop: asyncio.AbstractEventLoop | None = None,
) -> asyncio.Future[T]:
    """``asyncio.wrap_future`` that counts a pool's pending work as a thread in flight."""
    wrapped = _wrap_future(future, loop=loop)
    owner = wrapped.get_loop()
    if isinstance(owner, VirtualCallLoop) and not wrapped.done():
        owner.threads_in_flight += 1
        wrapped.add_done_callback(owner._thread_done)
    return wrapped


def run_virtual_call(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualCallLoop`, then close it."""
    loop = VirtualCallLoop()
    asyncio.set_event_loop(loop)
    asyncio.wrap_future = _tracked_wrap_future
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.wrap_future = _wrap_future
            asyncio.set_event_loop(None)
            loop.close()


def virtual_time(test: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Decorate an ``async def`` test to run on virtual time (its fixtures must be sync)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_virtual_call(test(*args, **kwargs))

    return run
