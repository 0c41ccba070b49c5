"""Genesys end to end: the demo bot answers a simulated Audio Connector session (open/opened,
PCMU both ways, DTMF, the bot's disconnect and Genesys's close transaction), and a public runner
admits AudioHook upgrades only on the integration's API key and request signature."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callpipe.frames.frames import InputDTMFFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineTask
from callpipe.providers.genesys.dialect import GenesysDialect
from callpipe.providers.genesys.signature import hmac_sha256, parse_signature_input, signature_base
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.serializers.genesys import GenesysAudioHookSerializer
from callpipe.testing.server import running_server
from callpipe.testing.simulator import CallIdentity, SimulatedCall
from callpipe.testing.virtual_calls import virtual_time
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

from .test_demo_bot import greeted_then_goodbye
from .twilio_harness import FrameLog

API_KEY = "integration-api-key"
SECRET = base64.b64encode(b"integration client secret!").decode()


@virtual_time
async def test_demo_bot_answers_a_simulated_genesys_call() -> None:
    result = await greeted_then_goodbye("genesys", keep_messages=True)
    assert result.events_of("invalid") == []  # every message the bot sent is valid AudioHook
    texts = [json.loads(m) for m in result.messages_received if isinstance(m, str)]
    types = [m["type"] for m in texts]
    assert types[0] == "opened" and types[-2:] == ["disconnect", "closed"]
    assert [m["seq"] for m in texts] == list(range(1, len(texts) + 1))
    assert texts[0]["parameters"]["media"] == [
        {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}
    ]
    sent_types = [json.loads(m)["type"] for m in result.messages_sent if isinstance(m, str)]
    assert sent_types[0] == "open" and "dtmf" in sent_types and sent_types[-1] == "close"
    assert texts[-1]["clientseq"] == len(sent_types)  # closed answers the close


def _signed_headers(path: str, host: str, *, key: str = API_KEY, nonce: str) -> dict[str, str]:
    import time

    headers = {
        "host": host,
        "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
        "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
        "audiohook-correlation-id": "e160e428-53e2-487c-977d-96989bf5c99d",
        "x-api-key": key,
    }
    components = " ".join(
        f'"{c}"'
        for c in (
            "@request-target",
            "@authority",
            "audiohook-organization-id",
            "audiohook-session-id",
            "audiohook-correlation-id",
            "x-api-key",
        )
    )
    now = int(time.time())
    value = (
        f'sig1=({components});keyid="{key}";nonce="{nonce}";alg="hmac-sha256";'
        f"created={now};expires={now + 60}"
    )
    parsed = parse_signature_input(value)[0]
    base = signature_base(parsed, headers, {"@request-target": path, "@authority": host})
    assert base is not None
    signature = base64.b64encode(hmac_sha256(base64.b64decode(SECRET), base)).decode()
    return {**headers, "signature-input": value, "signature": f"sig1=:{signature}:"}


@virtual_time
async def test_public_runner_admits_genesys_only_when_signed() -> None:
    seen: list[Any] = []

    async def bot(args: Any) -> None:
        seen.append((args.transport_type, args.call_data.call_id))

    creds = Credentials(extra={"GENESYS_API_KEY": API_KEY, "GENESYS_CLIENT_SECRET": SECRET})
    app = create_app(bot, RunnerConfig(proxy="bot.example"), credentials=creds, secret=b"k" * 32)
    async with running_server(app) as addr:
        # Genesys appends the Architect action's connector id to the Base Connection URI.
        url = f"ws://{addr}/ws/support-bot"
        identity = CallIdentity(stream_id="30b0e395-84d3-4570-ac13-9a62d8f514c0")
        # Signed for the public host (-x): the Host header the runner sees is the local one.
        signed = _signed_headers(
            "/ws/support-bot", "bot.example", nonce="bm9uY2Utb25lLWZvci10ZXN0aW5n"
        )
        del signed["host"]
        async with SimulatedCall(url, "genesys", identity=identity, headers=signed) as call:
            await call.wait_for_hangup(timeout=5)
        assert len(seen) == 1 and seen[0][0] == "genesys"

        # The same signed upgrade again (a replay), a wrong API key, and no signature: 403.
        unsigned = {k: v for k, v in signed.items() if not k.startswith("signature")}
        forged = {**signed, "x-api-key": "someone-else"}
        for headers in (signed, forged, unsigned):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, additional_headers=headers) as ws:
                    await ws.send(GenesysDialect().handshake()[0])
            assert refused.value.response.status_code == 403
    assert len(seen) == 1


@virtual_time
async def test_a_bot_built_like_pipecats_answers_open_itself_and_closes_on_close() -> None:
    """No runner: the app accepts the socket and hands it to the transport; the serializer sees
    ``open`` itself and answers through the transport's reply path, then the caller hangs up."""
    log = FrameLog()
    app = FastAPI()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        params = FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, serializer=GenesysAudioHookSerializer()
        )
        transport = FastAPIWebsocketTransport(websocket=websocket, params=params)
        task = PipelineTask(Pipeline([transport.input(), log, transport.output()]))

        @transport.event_handler("on_client_disconnected")
        async def gone(transport: FastAPIWebsocketTransport, ws: WebSocket) -> None:
            await task.cancel()

        await PipelineRunner(handle_sigint=False).run(task)

    async with running_server(app) as addr:
        call = SimulatedCall(f"ws://{addr}/ws", "genesys", keep_messages=True)
        async with call:
            assert await call.wait_for(lambda: call.dialect.media_flowing, timeout=5)
            await call.press("7")
            assert await call.wait_for(lambda: bool(log.of(InputDTMFFrame)), timeout=5)
            await call.pause(0.3)
        await asyncio.sleep(0.3)  # the bot answers the caller's close
    received = [json.loads(m) for m in call.result().messages_received if isinstance(m, str)]
    assert [m["type"] for m in received][:1] == ["opened"]
    assert [f.button.value for f in log.of(InputDTMFFrame)] == ["7"]  # type: ignore[attr-defined]
    assert call.result().events_of("invalid") == []


@virtual_time
async def test_without_credentials_a_public_runner_refuses_genesys_upgrades() -> None:
    async def bot(args: Any) -> None:  # pragma: no cover - must never run
        raise AssertionError("admitted")

    app = create_app(
        bot, RunnerConfig(proxy="bot.example"), credentials=Credentials(), secret=b"k" * 32
    )
    headers = _signed_headers("/ws", "bot.example", nonce="bm9uY2UtdHdvLWZvci10ZXN0aW5n")
    del headers["host"]
    async with running_server(app) as addr:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{addr}/ws", additional_headers=headers):
                pass
    assert refused.value.response.status_code == 403
