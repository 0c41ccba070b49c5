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
async def running_server(
    app: Any,
    *,
    ws_max_size: int = 16 * 1024 * 1024,
    sndbuf: int | None = None,
    log_level: str = "warning",
    options: dict[str, Any] | None = None,
    listen_proto: int = socket.IPPROTO_TCP,
) -> AsyncIterator[str]:
    """Run ``app`` on a free loopback port; yields ``"127.0.0.1:PORT"``; stops it on exit.

    The listening socket is bound here and handed to uvicorn, so there is no window in which
    another test could take the port. ``sndbuf`` fixes the kernel send buffer of accepted
    sockets (Linux: inherited from the listener), so a peer that stops reading blocks the
    server's sends after kilobytes instead of megabytes. ``options`` are more ``uvicorn.Config``
    keyword arguments (e.g. ``callpipe.runner.limits.uvicorn_ws_options()``: the runner's
    connection guards).

    ``listen_proto`` is the listening socket's protocol number. ``IPPROTO_TCP``, not 0: asyncio's
    own loop turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP, and an accepted
    socket inherits the listener's. With Nagle on, a small write waits for the peer's delayed ACK
    (real milliseconds), which on a virtual clock is seconds of a call with nothing delivered.
    0 makes the socket as uvicorn's ``bind_socket`` does (``--workers``).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, listen_proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        **{
            "log_level": log_level,
            "lifespan": "off",
            "ws_max_size": ws_max_size,
            "timeout_graceful_shutdown": 3,
            **(options or {}),
        },
    )
    server = uvicorn.Server(config)
    # _serve() skips uvicorn's signal capture: the host process (a test run) owns its signals.
    task = asyncio.get_running_loop().create_task(server._serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 8.0)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        sock.close()
