"""Handshake abuse against the real runner: silent peers, garbage, wrong dialects, stream tokens.

Each bad connection is refused before a bot starts (no call record, no call slot held), with
the runner's close codes: 1002 no usable handshake, 4003 bad/missing/used token.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.exceptions import InvalidStatus

from .helpers import (
    BotConfig,
    BotServer,
    Caller,
    assert_call_alive,
    call_sid,
    capture_logs,
    serve,
)
from .runner_helpers import RunnerBot, runner_app

pytestmark = pytest.mark.integration

HANDSHAKE_TIMEOUT = 0.5


async def _refused(caller: Caller, code: int, within: float) -> None:
    started = time.monotonic()
    await asyncio.wait_for(caller.closed.wait(), within + 2.0)
    assert caller.close_code == code
    assert time.monotonic() - started <= within + 0.5


async def test_a_silent_peer_is_closed_after_the_handshake_timeout() -> None:
    bot = RunnerBot()
    app = runner_app(bot, insecure=True, handshake_timeout=HANDSHAKE_TIMEOUT)
    async with serve(app) as addr:
        caller = Caller(f"ws://{addr}/ws", handshake=False)
        await caller.connect()
        await _refused(caller, 1002, HANDSHAKE_TIMEOUT)
    assert bot.calls == []


@pytest.mark.parametrize(
    "messages",
    [
        ["garbage", "{", "\x00"],
        [b"\x00\x01", b"\xff" * 100, b"{}"],
        ['{"event": "hello"}', '{"event": "connected"}', '{"event": "media"}'],
        ['{"event": "start", "start": {"streamSid": 5}}'] * 3,
        ['{"event": "websocket:nonsense"}', "[1]", "null"],
    ],
    ids=["text-garbage", "binary-garbage", "no-start", "bad-start", "wrong-dialect"],
)
async def test_garbage_or_a_wrong_dialect_is_refused_without_waiting(
    messages: list[str | bytes],
) -> None:
    bot = RunnerBot()
    app = runner_app(bot, insecure=True, handshake_timeout=5.0)
    async with serve(app) as addr:
        caller = Caller(f"ws://{addr}/ws", handshake=False)
        await caller.connect()
        for message in messages:
            await caller.send_raw(message)
        await _refused(caller, 1002, 0.5)  # refused after three messages, not the timeout
    assert bot.calls == []


async def test_stream_tokens_are_one_time_bound_to_the_call_and_unforgeable() -> None:
    bot = RunnerBot()
    app = runner_app(bot)
    tokens = app.state.runner.tokens
    good = tokens.issue(provider="twilio", call_id=call_sid(1))
    payload, _, signature = good.partition(".")
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    other_call = tokens.issue(provider="twilio", call_id=call_sid(99))
    wrong_provider = tokens.issue(provider="telnyx", call_id=call_sid(1))
    async with serve(app) as addr:
        async with Caller(f"ws://{addr}/ws/{good}", 1) as caller:
            await asyncio.sleep(0.1)
            await assert_call_alive(caller, bot.calls[0])
        for path in (f"/ws/{good}", f"/ws/{forged}", "/ws/x.y", "/ws/%C3%A9t%C3%A9.x"):
            # Used, forged, malformed or non-ASCII: HTTP 403 before the upgrade.
            with pytest.raises(InvalidStatus) as refused:
                await Caller(f"ws://{addr}{path}", 1).connect()
            assert refused.value.response.status_code == 403
        for path in (f"/ws/{other_call}", "/ws"):  # bound to another call / carried nowhere
            attacker = Caller(f"ws://{addr}{path}", 1)
            await attacker.connect()
            await _refused(attacker, 4003, 0.5)
        wrong = Caller(f"ws://{addr}/ws/{wrong_provider}", 1)
        await wrong.connect()
        await _refused(wrong, 4003, 0.5)
    assert len(bot.calls) == 1  # no bot ever started for a refused stream


async def test_silent_peers_hold_no_call_slot() -> None:
    bot = RunnerBot()
    app = runner_app(bot, insecure=True, max_calls=1, handshake_timeout=5.0)
    async with serve(app) as addr:
        squatters = [Caller(f"ws://{addr}/ws", handshake=False) for _ in range(3)]
        for squatter in squatters:
            await squatter.connect()
        async with Caller(f"ws://{addr}/ws", 1) as caller:
            await asyncio.sleep(0.1)
            assert len(bot.calls) == 1
            await assert_call_alive(caller, bot.calls[0])
        for squatter in squatters:
            squatter.abort()


async def test_a_bot_raising_under_the_runner_is_logged_and_costs_only_its_call() -> None:
    server = BotServer(BotConfig(fail="before_pipeline"))
    bot = RunnerBot(server)
    app = runner_app(bot, insecure=True)
    with capture_logs() as logs:
        async with serve(app) as addr:
            async with Caller(f"ws://{addr}/ws", 1) as victim:
                await asyncio.wait_for(victim.closed.wait(), 5)
            assert type(bot.calls[0].error).__name__ == "Fault"
            server.config.fail = None
            async with Caller(f"ws://{addr}/ws", 2) as neighbour:
                await asyncio.sleep(0.1)
                await assert_call_alive(neighbour, bot.calls[1])
            registry = app.state.runner.calls
            for _ in range(100):  # both calls' slots are given back
                if registry.active == 0:
                    break
                await asyncio.sleep(0.02)
            assert registry.active == 0
    failures = [r for r in logs.records if r.exc_info and "Fault" in repr(r.exc_info[1])]
    assert len(failures) == 1  # logged once, with the (masked) call id
    assert "bot() failed (twilio call CA00…01)" in failures[0].getMessage()
