"""jambonz end to end: the runner accepts the listen stream's subprotocol, and the demo bot
answers a simulated jambonz call (greeting, DTMF, hang-up by closing the stream)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from callpipe.providers.jambonz.dialect import JambonzDialect
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.testing.server import running_server
from callpipe.testing.simulator import CallIdentity, SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

from .test_demo_bot import demo_server, greeted_then_goodbye


@virtual_time
async def test_runner_accepts_with_the_jambonz_subprotocol() -> None:
    async with demo_server() as url:
        async with connect(url, subprotocols=[Subprotocol("audio.jambonz.org")]) as ws:
            assert ws.subprotocol == "audio.jambonz.org"
            await ws.send(JambonzDialect().handshake()[0])
            first = await ws.recv()  # the greeting: binary L16, never JSON-wrapped
            assert isinstance(first, bytes) and len(first) % 2 == 0
        async with connect(url) as plain:  # nobody else is offered a subprotocol
            assert plain.subprotocol is None


@virtual_time
async def test_demo_bot_answers_a_simulated_jambonz_call() -> None:
    result = await greeted_then_goodbye("jambonz")
    assert result.events_of("invalid") == []  # every frame the bot sent is jambonz's
    assert [e.detail for e in result.events_of("dtmf")] == ["#"]


@virtual_time
async def test_signed_webhook_token_admits_that_calls_jambonz_stream() -> None:
    secret, call_sid = "wh_secret_integration", "5c1c7a8e-3f0b-4d8e-9d35-0f4f2b8f9a10"
    seen: list[tuple[Any, Any]] = []

    async def bot(args: Any) -> None:
        seen.append((args.transport_type, args.call_data.call_id))

    creds = Credentials(extra={"JAMBONZ_WEBHOOK_SECRET": secret})
    app = create_app(bot, RunnerConfig(proxy="bot.example"), credentials=creds, secret=b"k" * 32)
    body = json.dumps({"call_sid": call_sid, "application_sid": "a", "from": "+1555"}).encode()
    ts = int(time.time())
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "Jambonz-Signature": f"t={ts},v1={digest}"}
    async with running_server(app) as addr, httpx.AsyncClient() as http:
        answer = await http.post(f"http://{addr}/", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        url = json.loads(answer.text)[0]["url"].replace("wss://bot.example", f"ws://{addr}")
        identity = CallIdentity(call_id=call_sid)
        async with SimulatedCall(url, "jambonz", identity=identity) as call:
            await call.wait_for_hangup(timeout=5)
    assert seen == [("jambonz", call_sid)]
