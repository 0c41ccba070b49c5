"""Application faults: a bot that raises, a processor that raises, an event handler that raises.

The contract: an exception that escapes a processor is a bug in that call's bot, so it is logged
once, with its traceback and the call id, and that call ends gracefully (what is queued plays
out, the call is hung up through the provider's API where configured). A *fatal* error
(``FatalErrorFrame``, or a failure to start) cancels that call at once. An exception in an event
handler is logged once and the call goes on (handlers are side tasks). A service reporting a
failed request itself (a flaky TTS) does not end the call. Neighbour calls never notice.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from callpipe.testing.virtual_calls import virtual_time

from .helpers import (
    BotConfig,
    BotServer,
    Caller,
    RestLog,
    assert_call_alive,
    capture_logs,
    fake_twilio_rest,
    serve,
)

pytestmark = pytest.mark.integration


def _tracebacks(logs: object, text: str) -> list[logging.LogRecord]:
    records: list[logging.LogRecord] = logs.records  # type: ignore[attr-defined]
    return [
        r
        for r in records
        if r.exc_info and r.exc_info[1] is not None and text in str(r.exc_info[1])
    ]


@virtual_time
async def test_a_processor_raising_mid_call_ends_only_that_call() -> None:
    server = BotServer()
    with capture_logs() as logs:
        async with (
            serve(server.app) as addr,
            Caller(f"ws://{addr}/ws", 1) as victim,
            Caller(f"ws://{addr}/ws", 2) as neighbour,
        ):
            await asyncio.sleep(0.1)
            await victim.press("7")
            await asyncio.wait_for(victim.closed.wait(), 5)
            assert victim.close_code == 1000  # ended cleanly by the bot side, not dropped
            await server.calls[0].done.wait()
            await assert_call_alive(neighbour, server.calls[1])
        await server.wait_calls(2)
    failures = _tracebacks(logs, "injected processor failure")
    assert len(failures) == 1  # logged once...
    assert "[call " in failures[0].getMessage()  # ...naming the call
    assert [c.stats.end_reason for c in server.calls] == ["error", "caller hung up (remote closed)"]
    assert server.calls[0].leftover_tasks == []


@virtual_time
async def test_a_fatal_error_ends_only_that_call_and_hangs_it_up() -> None:
    rest = RestLog()
    with capture_logs() as logs:
        async with serve(fake_twilio_rest(rest)) as rest_addr:
            server = BotServer(BotConfig(rest_url=f"http://{rest_addr}"))
            async with (
                serve(server.app) as addr,
                Caller(f"ws://{addr}/ws", 1) as victim,
                Caller(f"ws://{addr}/ws", 2) as neighbour,
            ):
                await asyncio.sleep(0.1)
                await victim.press("6")
                await asyncio.wait_for(victim.closed.wait(), 5)
                assert victim.close_code == 1000
                await server.calls[0].done.wait()
                await assert_call_alive(neighbour, server.calls[1])
            await server.wait_calls(2)
    # Hung up through the API once; the neighbour hung up itself, so nothing to do there.
    assert [r["call"] for r in rest.requests] == [victim.call_sid]
    assert server.calls[0].stats.end_reason == "error"
    assert server.calls[0].leftover_tasks == []
    errors = [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR]
    assert len([m for m in errors if "injected fatal error" in m]) == 1, errors
    ends = {r.end_reason for r in logs.call_ends()}  # type: ignore[attr-defined]
    assert "error" in ends


@virtual_time
async def test_a_processor_failing_to_start_ends_that_call() -> None:
    """A pipeline that cannot start must not linger as a silent call that only buffers."""
    server = BotServer(BotConfig(fail="in_start"))
    with capture_logs() as logs:
        async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
            await asyncio.wait_for(caller.closed.wait(), 5)
            assert caller.close_code == 1000
        await server.wait_calls(1)
    assert server.calls[0].stats.end_reason == "error"
    assert len(_tracebacks(logs, "injected failure while starting")) == 1


@virtual_time
async def test_an_event_handler_raising_is_logged_once_and_the_call_goes_on() -> None:
    server = BotServer(BotConfig(fail="on_connected"))
    with capture_logs() as logs:
        async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
            await asyncio.sleep(0.1)
            await assert_call_alive(caller, server.calls[0])
        await server.wait_calls(1)
    assert len(_tracebacks(logs, "injected event handler failure")) == 1


@pytest.mark.parametrize("when", ["before_pipeline", "after_pipeline"])
@virtual_time
async def test_a_bot_raising_costs_only_its_own_call(when: str) -> None:
    server = BotServer(BotConfig(fail=when))
    async with serve(server.app) as addr:
        async with Caller(f"ws://{addr}/ws", 1) as victim:
            if when == "after_pipeline":
                await victim.send_silence(0.1)
                await victim.stop()
            await asyncio.wait_for(victim.closed.wait(), 5)
        await server.wait_calls(1)
        assert type(server.calls[0].error).__name__ == "Fault"
        server.config.fail = None
        async with Caller(f"ws://{addr}/ws", 2) as neighbour:
            await asyncio.sleep(0.05)
            await assert_call_alive(neighbour, server.calls[1])
