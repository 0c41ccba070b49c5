"""Serve an ASGI app with a real uvicorn server on 127.0.0.1 inside the running event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def running_server(app: Any, *, ws_max_size: int = 16 * 1024 * 1024) -> AsyncIterator[str]:
    """Run ``app`` on a free loopback port; yields ``"127.0.0.1:PORT"``; stops it on exit."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws_max_size=ws_max_size,
    )
    server = uvicorn.Server(config)
    # _serve() skips uvicorn's signal capture: the host process (a test run) owns its signals.
    task = asyncio.get_running_loop().create_task(server._serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 5.0)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
