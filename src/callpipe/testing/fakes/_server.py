"""Run an ASGI app on 127.0.0.1 on a free port inside the current event loop (for fakes)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn


class LocalASGIServer:
    """``await start()`` → serving on ``127.0.0.1:port``; ``await stop()`` shuts it down."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        config = uvicorn.Config(
            self._app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
        )
        server = uvicorn.Server(config)
        # The fakes run inside a test's event loop: leave the process's signal handlers alone.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._server = server
        self._task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("fake server failed to start")
            await asyncio.sleep(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 3.0)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._server = None
        self._task = None
