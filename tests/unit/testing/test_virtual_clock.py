"""``VirtualTimeLoop``: the clock jumps over idle time, but not over work on a thread."""

from __future__ import annotations

import asyncio
import time

from callpipe.testing.virtual_clock import VirtualTimeLoop, run_virtual


def test_idle_time_is_jumped() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        await asyncio.sleep(30.0)
        assert time.monotonic() - start < 5.0
        return loop.time()

    assert run_virtual(scenario()) == 30.0


def test_thread_work_holds_the_clock() -> None:
    async def scenario() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        far = asyncio.create_task(asyncio.sleep(10.0))  # a timer the clock could jump to
        start = loop.time()
        await loop.run_in_executor(None, time.sleep, 0.1)
        during = loop.time() - start
        assert loop.threads_in_flight == 0
        await far
        return during, loop.time() - start

    during, after = run_virtual(scenario())
    assert during < 1.0  # not 10 s: the thread's result landed before the timer
    assert after == 10.0
