"""VirtualCallLoop: timers jump, thread work holds the clock, near-zero waits cannot spin."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import pytest

from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import VirtualCallLoop, run_virtual_call, virtual_time
from unit.small_writes import WORDS, receive_words, small_writes_app


def test_a_long_sleep_takes_no_real_time() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualCallLoop)
        start = loop.time()
        await asyncio.sleep(30.0)
        return loop.time() - start

    real = time.monotonic()
    assert run_virtual_call(scenario()) == pytest.approx(30.0, abs=1e-6)
    assert time.monotonic() - real < 5.0


def test_thread_work_holds_the_clock_so_a_timeout_does_not_fire_early() -> None:
    async def scenario() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        # A 2 s timeout around 0.3 s of real work in a thread: on a clock that jumped to the
        # next timer while the thread ran, the timeout would fire first.
        result = await asyncio.wait_for(asyncio.to_thread(lambda: time.sleep(0.3) or "done"), 2)
        return result, loop.time() - start

    result, elapsed = run_virtual_call(scenario())
    assert result == "done"
    assert 0.25 < elapsed < 2.0


def test_a_private_pool_awaited_with_wrap_future_holds_the_clock_too() -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1)

    async def scenario() -> str:
        work = pool.submit(lambda: time.sleep(0.3) or "heard")
        return await asyncio.wait_for(asyncio.wrap_future(work), 2)

    try:
        assert run_virtual_call(scenario()) == "heard"
    finally:
        pool.shutdown()
    assert asyncio.wrap_future.__name__ == "wrap_future"  # restored after the run


def test_a_wait_one_float_step_ahead_ends() -> None:
    """``deadline - now`` can be a few ULPs: the timer must still fire after the clock moves."""

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(10.0)
        deadline = loop.time() + 1e-15
        rounds = 0
        while loop.time() < deadline:
            rounds += 1
            await asyncio.sleep(deadline - loop.time())
        return rounds

    assert 1 <= run_virtual_call(scenario()) <= 2


@virtual_time
async def test_a_real_server_answers_on_virtual_time() -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        await asyncio.sleep(5.0)  # a slow handler costs no real time
        return {"pong": "yes"}

    import httpx

    loop = asyncio.get_running_loop()
    async with running_server(app) as addr, httpx.AsyncClient() as http:
        start = loop.time()
        reply = await http.get(f"http://{addr}/ping", timeout=10)
        elapsed = loop.time() - start
    assert reply.json() == {"pong": "yes"}
    assert 5.0 <= elapsed < 6.0


@virtual_time
async def test_small_server_writes_in_a_row_arrive_without_waiting_for_an_ack() -> None:
    """The server's sockets have Nagle off. With it on (asyncio's loop leaves it on for a
    listening socket not created as IPPROTO_TCP), the second of two small writes waits in the
    kernel for the peer's delayed ACK: real milliseconds, which this clock skips, so the
    message would only arrive once the client happened to send something."""
    async with running_server(small_writes_app()) as addr:
        assert await receive_words(f"ws://{addr}/ws") == WORDS
