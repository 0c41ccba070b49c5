"""The draining server finds the runner's state through a typed seam, not attribute probing:
a SIGTERM drains that state's calls, and stopping closes its stores."""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from callpipe.runner.app import RunnerConfig, RunnerState, create_app, runner_state
from callpipe.runner.server import DrainingServer, uvicorn_config


async def _bot(args: Any) -> None:
    return None


def _runner_app() -> tuple[FastAPI, RunnerState]:
    app = create_app(_bot, RunnerConfig(insecure=True), secret=b"s" * 32)
    return app, app.state.runner


def test_runner_state_is_the_one_create_app_made() -> None:
    app, state = _runner_app()
    assert runner_state(app) is state
    assert runner_state(FastAPI()) is None  # some other app
    assert runner_state("callpipe.runner.app:create_app") is None  # an import path
    other, other_state = _runner_app()
    assert runner_state(other) is other_state is not state


class _Wrapper:
    """Someone's own ASGI middleware around the runner app."""

    def __init__(self, app: ASGIApp) -> None:
        self.inner = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.inner(scope, receive, send)


async def _serve_until_sigterm(server: DrainingServer) -> None:
    """Serve on a free loopback port, then send the server a SIGTERM as its handler sees it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not serving.done()
            await asyncio.sleep(0.01)
        server.handle_exit(signal.SIGTERM, None)
        await asyncio.wait_for(serving, 10)
    finally:
        sock.close()


@pytest.mark.parametrize("wrapped", [False, True])
async def test_sigterm_drains_and_stopping_closes_the_state(
    wrapped: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, state = _runner_app()
    closed: list[RunnerState] = []

    async def aclose() -> None:
        closed.append(state)

    monkeypatch.setattr(state, "aclose", aclose)
    if wrapped:  # the wrapper hides the app: the state is handed over explicitly
        config = uvicorn_config(_Wrapper(app), "127.0.0.1", 0, 0)
        server = DrainingServer(config, runner=state)
    else:
        server = DrainingServer(uvicorn_config(app, "127.0.0.1", 0, 0))
    await _serve_until_sigterm(server)
    assert state.calls.draining  # the SIGTERM drained this state's calls, then exited
    assert closed == [state]


async def test_a_plain_asgi_app_stops_at_once_on_sigterm() -> None:
    server = DrainingServer(uvicorn_config(FastAPI(), "127.0.0.1", 0, 0))
    await _serve_until_sigterm(server)
    assert server.should_exit
