"""FakeCartesiaServer: Cartesia's TTS WebSocket (``/tts/websocket``) on 127.0.0.1.

Protocol (as documented): the client sends generation requests ``{"model_id", "transcript",
"voice", "context_id", "output_format": {"container": "raw", "encoding": "pcm_s16le",
"sample_rate"}, "add_timestamps", "continue"}`` — inputs with the same ``context_id`` continue
one utterance, ``continue: false`` ends it — and ``{"context_id", "cancel": true}``. The server
answers per context with ``{"type": "chunk", "data": <base64 audio>}``, ``{"type":
"timestamps", "word_timestamps": {"words", "start", "end"}}`` (seconds from the context start),
and ``{"type": "done"}``; errors are ``{"type": "error", "done": true, "error", "status_code"}``.

The fake speaks a tone of ``secs_per_word`` per word, sends each input's word timestamps before
its audio (the order a client must cope with), and can be told to drop the socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import LocalWebsocketServer, ServedWebsocketFake
from callpipe.testing.fakes.openai import tone_pcm


@dataclass
class _Context:
    id: str
    inputs: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    offset_secs: float = 0.0
    task: asyncio.Task[None] | None = None


class FakeCartesiaServer(ServedWebsocketFake):
    """See the module docstring. ``async with FakeCartesiaServer() as server: server.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.messages: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        self.done: list[str] = []
        self.connections = 0
        self.drop_after_chunks: int | None = None
        self.error_next: str | None = None
        self._chunks_sent = 0
        self._server = LocalWebsocketServer(self._handle, api_key=api_key, key_header="X-API-Key")
        self.fail_handshakes: list[int] = self._server.fail_handshakes
        """Statuses for the next handshakes (``fake.fail_handshakes.append(429)``)."""

    @property
    def rejected(self) -> int:
        return self._server.rejected

    # ------------------------------------------------------------------ protocol

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        contexts: dict[str, _Context] = {}
        try:
            async for raw in ws:
                message = json.loads(raw)
                self.messages.append(message)
                context_id = str(message.get("context_id", ""))
                if message.get("cancel"):
                    self.cancelled.append(context_id)
                    ctx = contexts.pop(context_id, None)
                    if ctx is not None and ctx.task is not None:
                        ctx.task.cancel()
                    continue
                if self.error_next is not None:
                    error, self.error_next = self.error_next, None
                    await ws.send(
                        json.dumps(
                            {
                                "type": "error",
                                "done": True,
                                "error": error,
                                "status_code": 400,
                                "context_id": context_id,
                            }
                        )
                    )
                    continue
                ctx = contexts.get(context_id)
                if ctx is None:
                    ctx = contexts[context_id] = _Context(context_id)
                    ctx.task = asyncio.get_running_loop().create_task(self._generate(ws, ctx))
                ctx.inputs.put_nowait(message)
        except ConnectionClosed:
            pass
        finally:
            for ctx in contexts.values():
                if ctx.task is not None:
                    ctx.task.cancel()

    async def _generate(self, ws: ServerConnection, ctx: _Context) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                message = await ctx.inputs.get()
                if message is None:
                    return
                rate = int(message.get("output_format", {}).get("sample_rate", 16000))
                words = str(message.get("transcript", "")).split()
                if words and message.get("add_timestamps"):
                    starts = [ctx.offset_secs + i * self.secs_per_word for i in range(len(words))]
                    await ws.send(
                        json.dumps(
                            {
                                "type": "timestamps",
                                "done": False,
                                "status_code": 206,
                                "context_id": ctx.id,
                                "word_timestamps": {
                                    "words": words,
                                    "start": starts,
                                    "end": [s + self.secs_per_word for s in starts],
                                },
                            }
                        )
                    )
                pcm = tone_pcm(len(words) * self.secs_per_word, rate)
                ctx.offset_secs += len(words) * self.secs_per_word
                step = max(2, int(self.chunk_secs * rate) * 2)
                for i in range(0, len(pcm), step):
                    if (
                        self.drop_after_chunks is not None
                        and self._chunks_sent >= self.drop_after_chunks
                    ):
                        self.drop_after_chunks = None
                        ws.transport.abort()
                        return
                    await ws.send(
                        json.dumps(
                            {
                                "type": "chunk",
                                "data": base64.b64encode(pcm[i : i + step]).decode(),
                                "done": False,
                                "status_code": 206,
                                "step_time": 1,
                                "context_id": ctx.id,
                            }
                        )
                    )
                    self._chunks_sent += 1
                    await asyncio.sleep(self.chunk_delay)
                if not message.get("continue", False):
                    self.done.append(ctx.id)
                    await ws.send(
                        json.dumps(
                            {"type": "done", "done": True, "status_code": 206, "context_id": ctx.id}
                        )
                    )
                    return
