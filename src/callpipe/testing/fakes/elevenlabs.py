"""FakeElevenLabsServer: ElevenLabs' multi-context TTS WebSocket on 127.0.0.1.

Endpoint ``/v1/text-to-speech/{voice_id}/multi-stream-input?model_id=…&output_format=pcm_8000``
with the key in the ``xi-api-key`` header. Client messages: ``{"text", "context_id",
"voice_settings"?, "flush"?}``, ``{"context_id", "flush": true}``, ``{"context_id",
"close_context": true}``, ``{"text": ""}`` (keep-alive), ``{"close_socket": true}``. Server
messages: ``{"audio": <base64>, "alignment": {"chars", "charStartTimesMs", "charDurationsMs"},
"contextId", "isFinal": false}`` (alignment times restart at 0 in every message) and, after a
context is closed and its audio sent, ``{"isFinal": true, "contextId"}``.

The fake speaks ``secs_per_char`` of tone per character, one message per text input, and can be
told to drop the socket after a number of audio messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import LocalWebsocketServer, ServedWebsocketFake
from callpipe.testing.fakes.openai import tone_pcm


class FakeElevenLabsServer(ServedWebsocketFake):
    """See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_char: float = 0.01,
        chunk_delay: float = 0.0,
        chunk_secs: float = 0.1,
    ) -> None:
        self.secs_per_char = secs_per_char
        self.chunk_delay = chunk_delay
        self.chunk_secs = chunk_secs
        self.messages: list[dict[str, Any]] = []
        self.closed_contexts: list[str] = []
        self.queries: list[dict[str, list[str]]] = []
        self.connections = 0
        self.drop_after_chunks: int | None = None
        self._chunks_sent = 0
        self._server = LocalWebsocketServer(self._handle, api_key=api_key, key_header="xi-api-key")
        self.fail_handshakes: list[int] = self._server.fail_handshakes
        """Statuses for the next handshakes (``fake.fail_handshakes.append(429)``)."""

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        self.queries.append(query)
        fmt = query.get("output_format", ["pcm_16000"])[0]
        rate = int(fmt.split("_")[1])
        work: dict[str, asyncio.Queue[str | None]] = {}
        tasks: list[asyncio.Task[None]] = []
        try:
            async for raw in ws:
                message = json.loads(raw)
                self.messages.append(message)
                if message.get("close_socket"):
                    break
                context_id = message.get("context_id")
                if context_id is None:
                    continue  # keep-alive
                queue = work.get(context_id)
                if queue is None:
                    queue = work[context_id] = asyncio.Queue()
                    task = asyncio.get_running_loop().create_task(
                        self._generate(ws, context_id, queue, rate)
                    )
                    tasks.append(task)
                if message.get("close_context"):
                    self.closed_contexts.append(context_id)
                    queue.put_nowait(None)
                elif message.get("text", "").strip():
                    queue.put_nowait(message["text"])
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()

    async def _generate(
        self, ws: ServerConnection, context_id: str, queue: asyncio.Queue[str | None], rate: int
    ) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await queue.get()
                if text is None:
                    await ws.send(json.dumps({"isFinal": True, "contextId": context_id}))
                    return
                # One message per chunk of characters, alignment relative to the message.
                chars_per_chunk = max(1, int(self.chunk_secs / self.secs_per_char))
                for i in range(0, len(text), chars_per_chunk):
                    piece = text[i : i + chars_per_chunk]
                    if (
                        self.drop_after_chunks is not None
                        and self._chunks_sent >= self.drop_after_chunks
                    ):
                        self.drop_after_chunks = None
                        ws.transport.abort()
                        return
                    ms = self.secs_per_char * 1000
                    message = {
                        "audio": base64.b64encode(
                            tone_pcm(len(piece) * self.secs_per_char, rate)
                        ).decode(),
                        "isFinal": False,
                        "contextId": context_id,
                        "alignment": {
                            "chars": list(piece),
                            "charStartTimesMs": [round(n * ms) for n in range(len(piece))],
                            "charDurationsMs": [round(ms)] * len(piece),
                        },
                    }
                    await ws.send(json.dumps(message))
                    self._chunks_sent += 1
                    await asyncio.sleep(self.chunk_delay)
