"""The runner app and the spec's manual FastAPI recipe, served in-process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.responses import HTMLResponse
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callpipe.frames.frames import EndFrame, OutputAudioRawFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.calls import CALLS_REFUSED
from callpipe.runner.types import WebSocketRunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

from .harness import fake_call

pytestmark = pytest.mark.integration

TONE = (b"\x00\x20\x00\xe0" * 2000)[:8000]  # 0.5 s of a loud square-ish wave at 8 kHz


def _fake_twilio_api() -> tuple[FastAPI, list[dict[str, Any]]]:
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def update(account: str, call: str, request: Request) -> JSONResponse:
        seen.append({"call": call, "body": (await request.body()).decode()})
        return JSONResponse({"sid": call})

    return app, seen


async def run_bot(websocket: WebSocket, stream_sid: str, call_sid: str, api: str) -> None:
    """The spec's run_bot: Twilio serializer, transport, pipeline; here it speaks and hangs up."""
    serializer = TwilioFrameSerializer(
        stream_sid=stream_sid,
        call_sid=call_sid,
        account_sid=os.getenv("MANUAL_TWILIO_ACCOUNT_SID", "AC1"),
        auth_token=os.getenv("MANUAL_TWILIO_AUTH_TOKEN", "tok"),
        base_url=api,
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_out_sample_rate=8000,
            serializer=serializer,
            session_timeout=30,
        ),
    )
    task = PipelineTask(
        Pipeline([transport.input(), transport.output()]),
        PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, client: Any) -> None:
        await task.queue_frames([OutputAudioRawFrame(TONE, 8000, 1), EndFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, client: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False, force_gc=True).run(task)


def _manual_app(api: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )

    @app.post("/")
    async def start_call() -> HTMLResponse:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n<Connect>\n'
            '<Stream url="wss://your-domain.com/ws"></Stream>\n</Connect>\n'
            '<Pause length="40"/>\n</Response>'
        )
        return HTMLResponse(content=xml, media_type="application/xml")

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        transport_type, call_data = await parse_telephony_websocket(websocket)
        assert transport_type == "twilio"
        await run_bot(websocket, call_data["stream_id"], call_data["call_id"], api)

    @app.websocket("/ws-literal")
    async def literal_endpoint(websocket: WebSocket) -> None:
        # The spec's recipe verbatim: discard one text message, parse the second.
        await websocket.accept()
        start_data = websocket.iter_text()
        await start_data.__anext__()
        call_data = json.loads(await start_data.__anext__())
        stream_sid = call_data["start"]["streamSid"]
        call_sid = call_data["start"]["callSid"]
        await run_bot(websocket, stream_sid, call_sid, api)

    return app


@virtual_time
async def test_manual_fastapi_recipe_with_parse_telephony_websocket() -> None:
    api_app, hangups = _fake_twilio_api()
    async with running_server(api_app) as api, running_server(_manual_app(f"http://{api}")) as h:
        async with httpx.AsyncClient() as http:
            xml = (await http.post(f"http://{h}/")).text
        assert '<Stream url="wss://your-domain.com/ws">' in xml
        for path, call_id in (("/ws", "CA1"), ("/ws-literal", "CA2")):
            result = await fake_call(f"ws://{h}{path}", "twilio", call_id=call_id, max_secs=8)
            assert result.close_code == 1000
            assert result.heard_secs >= 0.45
    assert [(h["call"], h["body"]) for h in hangups] == [
        ("CA1", "Status=completed"),
        ("CA2", "Status=completed"),
    ]


async def test_plain_websocket_clients_need_a_start_token() -> None:
    seen: list[str | None] = []

    async def bot(args: WebSocketRunnerArguments) -> None:
        seen.append(args.transport_type)
        await args.websocket.send_text("hello")

    app = create_app(
        bot,
        RunnerConfig(transport="websocket"),
        credentials=Credentials(api_key="api-key-0123"),
        secret=b"k" * 32,
    )
    async with running_server(app) as host:
        async with connect(f"ws://{host}/ws") as ws:
            await ws.wait_closed()
            assert ws.close_code == 4003
        async with httpx.AsyncClient() as http:
            assert (await http.post(f"http://{host}/start")).status_code == 401
            wrong = {"Authorization": "Bearer api-key-0124"}
            assert (await http.post(f"http://{host}/start", headers=wrong)).status_code == 401
            key = {"Authorization": "Bearer api-key-0123"}
            start = (await http.post(f"http://{host}/start", headers=key)).json()
        assert start["wsUrl"] == f"ws://localhost:7860/ws/{start['token']}"
        path = urllib.parse.urlsplit(start["wsUrl"]).path
        async with connect(f"ws://{host}{path}") as ws:
            assert await ws.recv() == "hello"
        with pytest.raises(InvalidStatus) as refused:  # already used: refused before the upgrade
            await connect(
                f"ws://{host}/ws", additional_headers={"Authorization": f"Bearer {start['token']}"}
            )
        assert refused.value.response.status_code == 403
    assert seen == ["websocket"]


@virtual_time
async def test_stream_token_in_twilio_custom_parameters_and_silent_peer() -> None:
    calls: list[dict[str, Any]] = []

    async def bot(args: WebSocketRunnerArguments) -> None:
        assert args.call_data is not None
        calls.append(args.call_data.model_dump(by_alias=True))

    config = RunnerConfig(transport="twilio", proxy="example.test", handshake_timeout=0.3)
    app = create_app(bot, config, credentials=Credentials(), secret=b"k" * 32)
    token = app.state.runner.tokens.issue(provider="twilio", call_id="CA5")
    before = {r: CALLS_REFUSED.value(stage="stream", reason=r) for r in ("token", "handshake")}
    async with running_server(app) as host:
        params = {"callpipe_token": token, "from_number": "+1555"}
        ok = await fake_call(
            f"ws://{host}/ws", "twilio", call_id="CA5", custom_parameters=params, max_secs=3
        )
        assert ok.close_code == 1000
        wrong_call = app.state.runner.tokens.issue(provider="twilio", call_id="CA6")
        bad = await fake_call(f"ws://{host}/ws/{wrong_call}", "twilio", call_id="CA5", max_secs=3)
        assert bad.close_code == 4003
        async with connect(f"ws://{host}/ws/{token}") as ws:  # says nothing
            await asyncio.wait_for(ws.wait_closed(), 3)
            assert ws.close_code == 1002
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://{host}/metrics")).text
    assert [c["call_id"] for c in calls] == ["CA5"]
    after = {r: CALLS_REFUSED.value(stage="stream", reason=r) for r in ("token", "handshake")}
    assert after == {"token": before["token"] + 1, "handshake": before["handshake"] + 1}
    line = f'callpipe_runner_calls_refused_total{{reason="token",stage="stream"}} {after["token"]}'
    assert line in metrics


@virtual_time
async def test_silent_peers_hold_no_call_slot_and_pending_is_bounded() -> None:
    started: list[str | None] = []

    async def bot(args: WebSocketRunnerArguments) -> None:
        started.append(args.transport_type)

    config = RunnerConfig(transport="twilio", insecure=True, max_calls=1, handshake_timeout=3)
    app = create_app(bot, config, credentials=Credentials(), secret=b"k" * 32)
    app.state.runner.calls.max_pending = 2
    async with running_server(app) as host:
        async with connect(f"ws://{host}/ws"), connect(f"ws://{host}/ws"):
            await asyncio.sleep(0.1)  # two silent peers: the pending budget is used up
            third = await fake_call(f"ws://{host}/ws", "twilio", max_secs=2)
            assert third.http_status == 503
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"http://{host}/ready")).status_code == 200
        await asyncio.sleep(0.1)
        real = await fake_call(f"ws://{host}/ws", "twilio", max_secs=2)
        assert real.close_code == 1000
    assert started == ["twilio"]


@virtual_time
async def test_softphone_page_only_in_local_mode() -> None:
    async def bot(args: WebSocketRunnerArguments) -> None:
        return None

    for insecure, status in ((True, 200), (False, 404)):
        app = create_app(
            bot, RunnerConfig(insecure=insecure), credentials=Credentials(), secret=b"k" * 32
        )
        async with running_server(app) as host, httpx.AsyncClient() as http:
            page = await http.get(f"http://{host}/phone")
        assert page.status_code == status
        assert ("<script" in page.text) is insecure
