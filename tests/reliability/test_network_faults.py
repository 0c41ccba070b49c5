"""Broken networks: abrupt closes at every phase, a peer that stops reading, a slow peer, and a
provider REST API that is down or hanging while the bot hangs up.

Every test checks the same ending: the call is torn down within a bound, its end is logged once
with a reason, no task of it is left behind, and the server keeps serving the next call.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from callpipe.testing.server import free_port
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
    tone,
)

pytestmark = pytest.mark.integration


async def _next_call_works(server: BotServer, addr: str) -> None:
    n = len(server.calls) + 1
    async with Caller(f"ws://{addr}/ws", 100 + n) as caller:
        await asyncio.sleep(0.05)
        await assert_call_alive(caller, server.calls[-1])


def _ended_cleanly(server: BotServer, index: int = 0) -> str:
    rec = server.calls[index]
    assert rec.done.is_set()
    assert rec.error is None
    assert rec.leftover_tasks == []
    assert rec.task is not None and rec.task.has_finished()
    return str(rec.stats.end_reason)


@virtual_time
async def test_abrupt_close_before_start_leaves_nothing_behind() -> None:
    server = BotServer()
    async with serve(server.app) as addr:
        caller = Caller(f"ws://{addr}/ws", handshake=False)
        await caller.connect()
        await caller.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        caller.abort()
        for _ in range(100):
            if server.handshake_failures:
                break
            await asyncio.sleep(0.02)
        assert server.handshake_failures == 1
        assert server.calls == []
        await _next_call_works(server, addr)


@pytest.mark.parametrize("phase", ["mid_greeting", "mid_utterance", "right_after_start"])
@virtual_time
async def test_abrupt_close_mid_call_ends_the_call_promptly(phase: str) -> None:
    server = BotServer(BotConfig(greeting_secs=3.0 if phase == "mid_greeting" else 0.0))
    with capture_logs() as logs:
        async with serve(server.app) as addr:
            caller = Caller(f"ws://{addr}/ws")
            await caller.connect()
            if phase == "mid_greeting":
                await asyncio.sleep(0.5)
                assert caller.media_times(), "the greeting had not started"
            elif phase == "mid_utterance":
                sending = asyncio.create_task(caller.send_audio(tone(2.0)))
                await asyncio.sleep(0.5)
            cut = time.monotonic()
            caller.abort()
            if phase == "mid_utterance":
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
            await server.wait_calls(1, timeout=5)
            assert server.calls[0].ended_at is not None
            assert server.calls[0].ended_at - cut < 2.0
            reason = _ended_cleanly(server)
            assert reason.startswith("caller hung up")
            await _next_call_works(server, addr)
    assert len([r for r in logs.call_ends() if r.call_id.startswith("CA00")]) == 2  # type: ignore[attr-defined]
    assert not [r for r in logs.records if r.levelno >= logging.ERROR]


@virtual_time
async def test_abrupt_close_during_hang_up_still_tears_down_within_bounds() -> None:
    rest = RestLog(mode="hang")
    async with serve(fake_twilio_rest(rest)) as rest_addr:
        server = BotServer(
            BotConfig(rest_url=f"http://{rest_addr}", transport={"hang_up_timeout": 1.0})
        )
        async with serve(server.app) as addr:
            caller = Caller(f"ws://{addr}/ws")
            await caller.connect()
            await caller.press("0")  # the bot says goodbye, then hangs up through the REST API
            for _ in range(200):
                if rest.requests:
                    break
                await asyncio.sleep(0.02)
            assert rest.requests, "the bot never tried to hang up"
            cut = time.monotonic()
            caller.abort()
            await server.wait_calls(1, timeout=5)
            assert server.calls[0].ended_at is not None
            assert server.calls[0].ended_at - cut < 1.5  # hang_up_timeout + close, not forever
            assert _ended_cleanly(server) == "bot ended"
            await _next_call_works(server, addr)


@pytest.mark.parametrize("mode", ["hang", "error", "down"])
async def test_provider_api_down_or_hanging_does_not_stall_teardown(mode: str) -> None:
    rest = RestLog(mode=mode)
    with capture_logs() as logs:
        async with serve(fake_twilio_rest(rest)) as rest_addr:
            url = f"http://{rest_addr}" if mode != "down" else f"http://127.0.0.1:{free_port()}"
            server = BotServer(BotConfig(rest_url=url, transport={"hang_up_timeout": 1.0}))
            async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
                await caller.press("0")
                start = time.monotonic()
                await asyncio.wait_for(caller.closed.wait(), 5)
                assert time.monotonic() - start < 0.2 + 1.0 + 1.5  # goodbye + hang-up + close
                assert caller.close_code == 1000
                await server.wait_calls(1, timeout=5)
                assert _ended_cleanly(server) == "bot ended"
                await _next_call_works(server, addr)
    # A provider that refuses or does not answer the hang-up is an expected event: one WARNING
    # line, no traceback, nothing at ERROR.
    failures = [
        r for r in logs.records if r.levelno >= logging.WARNING and "hang" in r.getMessage()
    ]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert failures[0].levelno == logging.WARNING and failures[0].exc_info is None


@virtual_time
async def test_a_peer_that_stops_reading_is_ended_by_the_send_timeout() -> None:
    server = BotServer(BotConfig(greeting_secs=60.0, transport={"audio_out_write_timeout": 0.5}))
    with capture_logs() as logs:
        async with serve(server.app, sndbuf=4096) as addr:
            caller = Caller(f"ws://{addr}/ws", rcvbuf=2048)
            await caller.connect()
            await asyncio.sleep(0.3)
            caller.stop_reading()
            stalled = time.monotonic()
            feeding = asyncio.create_task(caller.send_silence(30.0))  # still talking
            try:
                await server.wait_calls(1, timeout=25)
            finally:
                feeding.cancel()
                await asyncio.gather(feeding, return_exceptions=True)
            rec = server.calls[0]
            assert rec.ended_at is not None
            print(f"stalled peer ended after {rec.ended_at - stalled:.1f}s")
            assert _ended_cleanly(server) == "timeout (peer stopped reading)"
            caller.abort()
            await _next_call_works(server, addr)
    (end, _) = logs.call_ends()
    assert end.end_reason == "timeout (peer stopped reading)"  # type: ignore[attr-defined]


async def test_a_message_send_to_a_peer_that_stopped_reading_is_bounded_too() -> None:
    """Not only audio: a large message sent from the receive path must not block forever."""
    rest = RestLog()
    async with serve(fake_twilio_rest(rest)) as rest_addr:
        server = BotServer(
            BotConfig(
                echo=False,
                rest_url=f"http://{rest_addr}",
                transport={"audio_out_write_timeout": 0.5},
            )
        )
        async with serve(server.app, sndbuf=4096) as addr:
            caller = Caller(f"ws://{addr}/ws", rcvbuf=2048)
            await caller.connect()
            await asyncio.sleep(0.1)
            caller.stop_reading()
            await caller.press("8")  # buffered by the server (its send returns at once)...
            await caller.press("8")  # ...this one waits for a window that never opens
            await server.wait_calls(1, timeout=5)
            assert _ended_cleanly(server) == "timeout (peer stopped reading)"
            assert len(rest.requests) == 1  # the carrier's leg may still be up: hang it up
            caller.abort()


async def test_a_slow_reader_gets_all_the_audio_and_the_call_carries_on() -> None:
    server = BotServer(BotConfig(echo=False, greeting_secs=2.0))
    async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
        assert caller.ws is not None
        transport = caller.ws.transport
        for _ in range(5):  # read in bursts: 300 ms deaf, 100 ms reading
            transport.pause_reading()
            await asyncio.sleep(0.3)
            transport.resume_reading()
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        media = caller.events("media")
        assert round(caller.media_secs() * 8000) == 16000  # all 2 s, none lost
        assert len(media) <= 100  # in 20 ms packets, several to a message when at hand
        (record,) = server.calls
        assert not record.done.is_set()
        assert record.stats.end_reason is None
