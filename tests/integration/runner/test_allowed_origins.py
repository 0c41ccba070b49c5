"""``allowed_origins`` (Pipecat 1.14): on the transport's params, and the runner's
``--allowed-origins`` / ``CALLPIPE_ALLOWED_ORIGINS`` / ``PIPECAT_ALLOWED_ORIGINS``, with real
WebSocket upgrades on a loopback server."""

from __future__ import annotations

import logging
import urllib.parse

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callpipe.errors import OriginNotAllowedError
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.run import _config_from_args, build_parser
from callpipe.runner.types import WebSocketRunnerArguments
from callpipe.testing.server import running_server
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.utils.security.allowed_origins import default_allowed_origins, is_origin_allowed

pytestmark = pytest.mark.integration

APP = "https://app.example.com"


def test_the_origin_must_be_listed_once_a_list_is_given() -> None:
    assert is_origin_allowed("http://evil.example", [])  # empty: every origin
    assert is_origin_allowed(None, [])
    assert is_origin_allowed("HTTPS://App.Example.com", [APP + "/"])
    assert not is_origin_allowed("https://app.example.com.evil.example", [APP])
    assert not is_origin_allowed("http://app.example.com", [APP])  # scheme matters
    assert not is_origin_allowed(None, [APP]) and not is_origin_allowed("", [APP])


def test_the_default_list_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLPIPE_ALLOWED_ORIGINS", raising=False)
    monkeypatch.delenv("PIPECAT_ALLOWED_ORIGINS", raising=False)
    assert default_allowed_origins() == []
    assert FastAPIWebsocketParams().allowed_origins == []
    monkeypatch.setenv("PIPECAT_ALLOWED_ORIGINS", " https://a.example , ,https://b.example")
    assert FastAPIWebsocketParams().allowed_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("CALLPIPE_ALLOWED_ORIGINS", "https://c.example")
    assert default_allowed_origins() == ["https://c.example"]
    assert _config_from_args(build_parser().parse_args([])).allowed_origins == ["https://c.example"]
    given = build_parser().parse_args(["--allowed-origins", APP, "https://d.example,https://e.x"])
    assert _config_from_args(given).allowed_origins == [
        APP,
        "https://d.example",
        "https://e.x",
    ]


async def test_the_transport_refuses_an_origin_not_listed() -> None:
    outcomes: list[str] = []
    app = FastAPI()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            FastAPIWebsocketTransport(websocket, FastAPIWebsocketParams(allowed_origins=[APP]))
        except ValueError as exc:  # what a Pipecat app catches
            assert isinstance(exc, OriginNotAllowedError)
            outcomes.append("refused")
            await websocket.close(code=1008)
            return
        outcomes.append("built")
        await websocket.close()

    async with running_server(app) as host:
        for origin in ("https://evil.example", None, APP):
            headers = {"Origin": origin} if origin else {}
            async with connect(f"ws://{host}/ws", additional_headers=headers) as ws:
                await ws.wait_closed()
    # A listed origin passes; a foreign one and a missing one are refused (Pipecat's contract).
    assert outcomes == ["refused", "refused", "built"]


async def test_local_runner_admits_listed_origins_and_still_refuses_others() -> None:
    served: list[str | None] = []

    async def bot(args: WebSocketRunnerArguments) -> None:
        served.append(args.websocket.headers.get("origin"))
        await args.websocket.send_text("hello")

    config = RunnerConfig(transport="websocket", insecure=True, allowed_origins=[APP])
    async with running_server(create_app(bot, config)) as host:
        for origin in (APP, None):
            headers = {"Origin": origin} if origin else {}
            async with connect(f"ws://{host}/ws", additional_headers=headers) as ws:
                assert await ws.recv() == "hello"
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://{host}/ws", additional_headers={"Origin": "https://evil.example"})
        assert refused.value.response.status_code == 403
        # The server's own pages (same origin) keep working in local mode.
        async with connect(
            f"ws://{host}/ws", additional_headers={"Origin": f"http://{host}"}
        ) as ws:
            assert await ws.recv() == "hello"
    assert served == [APP, None, f"http://{host}"]


async def test_public_runner_refuses_an_unlisted_origin_even_with_a_valid_token() -> None:
    async def bot(args: WebSocketRunnerArguments) -> None:
        await args.websocket.send_text("hello")

    config = RunnerConfig(transport="websocket", proxy="bot.example.com", allowed_origins=[APP])
    app = create_app(bot, config, credentials=Credentials(api_key="api-key-0123"), secret=b"k" * 32)
    key = {"Authorization": "Bearer api-key-0123"}
    async with running_server(app) as host, httpx.AsyncClient() as http:

        async def token_path() -> str:
            start = (await http.post(f"http://{host}/start", headers=key)).json()
            return urllib.parse.urlsplit(start["wsUrl"]).path

        path = await token_path()
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://{host}{path}", additional_headers={"Origin": "https://evil.ex"})
        assert refused.value.response.status_code == 403
        async with connect(f"ws://{host}{path}", additional_headers={"Origin": APP}) as ws:
            assert await ws.recv() == "hello"
        async with connect(f"ws://{host}{await token_path()}") as ws:  # no Origin: a server
            assert await ws.recv() == "hello"


async def test_the_runner_turns_the_transports_refusal_into_a_logged_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def bot(args: WebSocketRunnerArguments) -> None:
        params = FastAPIWebsocketParams(allowed_origins=[APP])
        FastAPIWebsocketTransport(args.websocket, params)
        await args.websocket.send_text("not reached")

    config = RunnerConfig(transport="websocket", insecure=True)
    with caplog.at_level(logging.INFO):
        async with running_server(create_app(bot, config)) as host:
            origin = {"Origin": f"http://{host}"}  # the runner admits it: same origin
            async with connect(f"ws://{host}/ws", additional_headers=origin) as ws:
                await ws.wait_closed()
                assert ws.close_code == 1008
    refusals = [r for r in caplog.records if "call refused" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
