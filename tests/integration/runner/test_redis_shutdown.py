"""The runner's server closes its Redis connections (token and dial stores) when it stops."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.server import DrainingServer, uvicorn_config

from .harness import redis_server, requires_redis

pytestmark = [pytest.mark.integration, requires_redis]


async def _bot(args: Any) -> None:
    return None


async def _other_clients(url: str) -> int:
    """Connections to the Redis besides the one asking."""
    from redis.asyncio import Redis

    probe = Redis.from_url(url)
    try:
        return len(await probe.client_list()) - 1
    finally:
        await probe.aclose()


async def test_stopping_the_server_closes_the_stores_redis_clients() -> None:
    async with redis_server() as url:
        config = RunnerConfig(proxy="fleet.example.test", transport="twilio", redis_url=url)
        app = create_app(_bot, config, credentials=Credentials(api_key="k" * 32), secret=b"s" * 32)
        state = app.state.runner
        assert await state.tokens.store.add_if_absent("probe", "1", 5.0) is None
        assert await state.dials.get("no-such-dial") is None
        assert await _other_clients(url) == 2  # one per store

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        server = DrainingServer(uvicorn_config(app, "127.0.0.1", 0, 0))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                assert not serving.done()
                await asyncio.sleep(0.01)
            assert await _other_clients(url) == 2  # serving keeps them
            server.should_exit = True
            await asyncio.wait_for(serving, 10)
        finally:
            sock.close()
        for _ in range(100):  # the server notices a closed socket on its next loop turn
            if await _other_clients(url) == 0:
                break
            await asyncio.sleep(0.02)
        assert await _other_clients(url) == 0
