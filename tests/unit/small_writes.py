"""A server that answers one message with three small ones in a row, and a client that reads
them: on a virtual clock the three arrive only if the server's socket has Nagle off (with it on,
the second write waits in the kernel for the client's delayed ACK, real time the clock skips)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect

WORDS = ["one", "two", "three"]


def small_writes_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        for word in WORDS:
            await websocket.send_text(word)
        await websocket.receive()  # the client's close

    return app


async def receive_words(url: str) -> list[str]:
    """Ask once, then read three messages (each given 5 s of the virtual clock)."""
    async with connect(url) as ws:
        await ws.send("go")
        return [str(await asyncio.wait_for(ws.recv(), 5.0)) for _ in WORDS]
