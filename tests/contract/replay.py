"""A WebSocket server that answers each client message with scripted provider messages.

Used to replay the messages documented by the providers (``fixtures/``) through our clients.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Self

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from callpipe.frames.frames import (
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)

Script = Callable[[dict[str, Any]], Awaitable[list[dict[str, Any]]]]


def reply(*chunks: str) -> list[Frame]:
    return [
        LLMFullResponseStartFrame(),
        *(LLMTextFrame(c) for c in chunks),
        LLMFullResponseEndFrame(),
    ]


class ReplayServer:
    def __init__(
        self, script: Script | None = None, *, on_connect: list[Any] | None = None
    ) -> None:
        self._script = script
        self._on_connect = on_connect or []
        self._server: Any = None
        self.received: list[dict[str, Any]] = []
        self.url = ""

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            for message in self._on_connect:
                await ws.send(json.dumps(message))
            async for raw in ws:
                if isinstance(raw, bytes):
                    continue
                message = json.loads(raw)
                self.received.append(message)
                for answer in await self._script(message) if self._script else []:
                    await ws.send(json.dumps(answer))
        except ConnectionClosed:
            pass

    async def __aenter__(self) -> Self:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()
