"""Asterisk end to end: the demo bot answers simulated ``chan_websocket`` calls on a real server.

Plain-text and JSON control messages; marks sent as ``MARK_MEDIA`` and acknowledged with
``MEDIA_MARK_PROCESSED``; barge-in as ``FLUSH_MEDIA``; ``DTMF_END`` read; the bot ends the call by
closing the socket (which hangs the channel up in Asterisk). Production mode admits the stream
with the ``websocket_client.conf`` credentials and refuses it without them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from websockets.asyncio.client import connect

from callpipe.providers.asterisk.auth import basic_header
from callpipe.providers.asterisk.dialect import AsteriskDialect, AsteriskJsonDialect
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.testing.server import running_server
from callpipe.testing.simulator import SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

from .test_demo_bot import barge_in, demo_server, greeted_then_goodbye


@pytest.mark.parametrize("dialect", [AsteriskDialect, AsteriskJsonDialect], ids=["plain", "json"])
@virtual_time
async def test_demo_bot_answers_a_simulated_asterisk_call(dialect: type[AsteriskDialect]) -> None:
    result = await greeted_then_goodbye(dialect=dialect())
    assert result.events_of("invalid") == []  # every command was in the call's format
    marks = [e.detail for e in result.events_of("mark")]
    acked = [e.detail for e in result.events_of("mark_ack")]
    assert marks and set(acked) <= set(marks) and acked, "MARK_MEDIA round trip"
    assert [e.detail for e in result.events_of("dtmf")] == ["#"]


@virtual_time
async def test_barge_in_sends_flush_media() -> None:
    async with demo_server() as url, SimulatedCall(url, "asterisk") as call:
        barge_at, clear, barge_end = await barge_in(call)  # FLUSH_MEDIA in Asterisk's words
        result = call.result()
    assert barge_at < clear.t < barge_at + 1.5
    assert result.bot_speech_secs(clear.t + 0.1, barge_end) < 0.1


@virtual_time
async def test_production_admits_asterisk_by_its_credentials_only() -> None:
    seen: list[tuple[Any, Any]] = []

    async def bot(args: Any) -> None:
        seen.append((args.transport_type, args.call_data.call_id))

    creds = Credentials(extra={"ASTERISK_WS_AUTH": "pbx1:s3cret"})
    config = RunnerConfig(transport="asterisk", host="127.0.0.1")
    app = create_app(bot, config, credentials=creds, secret=b"k" * 32)
    async with running_server(app) as addr:
        url = f"ws://{addr}/ws"
        auth = {"Authorization": basic_header("pbx1", "s3cret")}
        dialect = AsteriskDialect()
        async with SimulatedCall(url, dialect=dialect, headers=auth) as call:
            await call.wait_for_hangup(timeout=5)
        with pytest.raises(Exception, match="403"):
            async with SimulatedCall(url, "asterisk", headers={"Authorization": "Basic eDp5"}):
                pass
    assert seen == [("asterisk", dialect.identity.call_id)]


@virtual_time
async def test_media_xoff_pauses_the_bots_audio_until_media_xon() -> None:
    async with demo_server() as url, connect(url) as ws:
        await ws.send(AsteriskDialect().handshake()[0])
        await ws.send("MEDIA_XOFF")  # Asterisk's queue is full before the greeting starts
        held: list[str | bytes] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.8):
                while True:
                    held.append(await ws.recv())
        assert not any(isinstance(m, bytes) for m in held), "audio sent during MEDIA_XOFF"
        await ws.send("MEDIA_XON")
        async with asyncio.timeout(3):
            while not isinstance(await ws.recv(), bytes):
                pass  # the greeting flows again
