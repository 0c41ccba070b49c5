"""FakeElevenLabsServer: ElevenLabs' multi-context TTS WebSocket on 127.0.0.1.

The documented contract (https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-multi-stream-input
and the official ``elevenlabs`` SDK's ``WebsocketTtsClientMessageMulti`` /
``WebsocketTtsServerMessageMulti`` models):

- **Endpoint** ``/v1/text-to-speech/{voice_id}/multi-stream-input?model_id=…&output_format=
  pcm_8000|ulaw_8000|…&auto_mode=…&inactivity_timeout=…&enable_logging=…``; the key in the
  ``xi-api-key`` header (or ``Authorization: Bearer``).
- **Client messages**: ``{"text": " ", "context_id", "voice_settings"?}`` (context init; voice
  settings only in a context's first message), ``{"text", "context_id", "flush"?}``,
  ``{"context_id", "flush": true}``, ``{"context_id", "close_context": true}``, ``{"text": "",
  "context_id"}`` (keeps that context alive), ``{"close_socket": true}``.
- **Server messages**: ``{"audio": <base64>, "alignment": {"chars", "charStartTimesMs",
  "charDurationsMs"}, "contextId", "isFinal": false}`` (alignment times restart at 0 in every
  message) and, once a closed context's audio is sent, ``{"isFinal": true, "contextId"}``.
- **Limits**: at most ``max_contexts`` (5) open contexts per socket (the socket is closed with
  1008 ``max_active_conversations`` otherwise); a context with no message for
  ``inactivity_timeout`` seconds (default 20) is closed, and the socket is closed (1008, "Have
  not received a new text input within the timeout…") when no message at all came for that
  long; without ``auto_mode`` text waits in the buffer until ``chunk_threshold`` characters or
  a flush.

The fake speaks ``secs_per_char`` of tone per character and can be told to drop the socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import pcm_to_alaw, pcm_to_ulaw
from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal, ServedWebsocketFake
from callpipe.testing.fakes.openai import tone_pcm

PATH = re.compile(r"^/v1/text-to-speech/[^/]+/multi-stream-input$")
FORMATS = re.compile(r"^(pcm_(8000|16000|22050|24000|44100|48000)|ulaw_8000|alaw_8000)$")


def _refusal(status: int, code: str, message: str) -> Refusal:
    return Refusal(status, json.dumps({"detail": {"status": code, "message": message}}))


def _validate(request: Any) -> Refusal | None:
    parts = urlsplit(request.path)
    if not PATH.match(parts.path):
        return Refusal(404, json.dumps({"detail": "Not Found"}))
    query = parse_qs(parts.query)
    fmt = query.get("output_format", ["mp3_44100_128"])[-1]
    if not FORMATS.match(fmt):
        return _refusal(400, "invalid_output_format", f"output_format {fmt} is not supported here")
    timeout = query.get("inactivity_timeout", ["20"])[-1]
    if not timeout.isdigit() or not 1 <= int(timeout) <= 180:
        return _refusal(400, "invalid_parameters", "inactivity_timeout must be between 1 and 180")
    return None


def _encode(pcm: bytes, fmt: str) -> bytes:
    if fmt.startswith("ulaw"):
        return pcm_to_ulaw(pcm)
    if fmt.startswith("alaw"):
        return pcm_to_alaw(pcm)
    return pcm


@dataclass
class _Context:
    id: str
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    buffer: str = ""
    closed: bool = False
    last_message_at: float = field(default_factory=time.monotonic)
    initialized: bool = False
    task: asyncio.Task[None] | None = None


class FakeElevenLabsServer(ServedWebsocketFake):
    """See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_char: float = 0.01,
        chunk_delay: float = 0.0,
        chunk_secs: float = 0.1,
        max_contexts: int = 5,
        chunk_threshold: int = 120,
        final_key: str = "isFinal",
    ) -> None:
        self.secs_per_char = secs_per_char
        self.chunk_delay = chunk_delay
        self.chunk_secs = chunk_secs
        self.max_contexts = max_contexts
        self.chunk_threshold = chunk_threshold
        self.final_key = final_key
        """``isFinal`` (documented) or ``is_final`` (the SDK's model also knows it)."""
        self.messages: list[dict[str, Any]] = []
        self.closed_contexts: list[str] = []
        self.timed_out_contexts: list[str] = []
        self.queries: list[dict[str, list[str]]] = []
        self.close_codes: list[tuple[int, str]] = []
        """Close frames the fake sent (code, reason)."""
        self.connections = 0
        self.drop_after_chunks: int | None = None
        self._chunks_sent = 0
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[
                ("header", "xi-api-key", ""),
                ("header", "Authorization", "Bearer "),
                ("query", "authorization", "Bearer "),
            ],
            validate=_validate,
            unauthorized=_refusal(401, "invalid_api_key", "Invalid API key"),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes
        """Statuses for the next handshakes (``fake.fail_handshakes.append(429)``)."""

    async def _close(self, ws: ServerConnection, code: int, reason: str) -> None:
        self.close_codes.append((code, reason))
        await ws.close(code, reason)

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        self.queries.append(query)
        fmt = query.get("output_format", ["pcm_16000"])[-1]
        rate = int(fmt.split("_")[1])
        auto_mode = query.get("auto_mode", ["false"])[-1] == "true"
        timeout = int(query.get("inactivity_timeout", ["20"])[-1])
        contexts: dict[str, _Context] = {}
        heard = [time.monotonic()]
        watchdog = asyncio.get_running_loop().create_task(self._watch(ws, contexts, timeout, heard))
        try:
            async for raw in ws:
                message = json.loads(raw)
                self.messages.append(message)
                heard[0] = time.monotonic()
                if message.get("close_socket"):
                    break
                context_id = message.get("context_id")
                if context_id is None:
                    continue  # a socket-level keep-alive: it keeps no context alive
                ctx = contexts.get(context_id)
                if ctx is None or ctx.closed and ctx.task is not None and ctx.task.done():
                    if sum(not c.closed for c in contexts.values()) >= self.max_contexts:
                        await self._close(ws, 1008, "max_active_conversations")
                        return
                    ctx = contexts[context_id] = _Context(context_id)
                    ctx.task = asyncio.get_running_loop().create_task(
                        self._generate(ws, ctx, rate, fmt)
                    )
                elif "voice_settings" in message:
                    await self._close(
                        ws, 1008, "voice_settings can only be sent in a context's first message"
                    )
                    return
                ctx.last_message_at = time.monotonic()
                ctx.initialized = True
                if message.get("close_context"):
                    self.closed_contexts.append(context_id)
                    self._release(ctx, force=True)
                    ctx.closed = True
                    ctx.queue.put_nowait(None)
                    continue
                ctx.buffer += str(message.get("text") or "")
                ended = ctx.buffer.rstrip().endswith((".", "!", "?"))
                if (
                    message.get("flush")
                    or len(ctx.buffer) >= self.chunk_threshold
                    or (auto_mode and ended)
                ):
                    self._release(ctx, force=True)
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            for ctx in contexts.values():
                if ctx.task is not None:
                    ctx.task.cancel()

    @staticmethod
    def _release(ctx: _Context, *, force: bool) -> None:
        if ctx.buffer.strip() and force:
            ctx.queue.put_nowait(ctx.buffer.strip() + " ")
        if force:
            ctx.buffer = ""

    async def _watch(
        self,
        ws: ServerConnection,
        contexts: dict[str, _Context],
        idle_secs: float,
        heard: list[float],
    ) -> None:
        """Close contexts that got no message for ``inactivity_timeout`` seconds, and the
        socket (1008, as ElevenLabs does) when nothing at all came for that long."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(min(0.05, idle_secs / 4))
                now = time.monotonic()
                if now - heard[0] > idle_secs:
                    await self._close(
                        ws,
                        1008,
                        f"Have not received a new text input within the timeout of "
                        f"{idle_secs:g} seconds. Streaming input will be closed.",
                    )
                    return
                for ctx in list(contexts.values()):
                    if not ctx.closed and now - ctx.last_message_at > idle_secs:
                        self.timed_out_contexts.append(ctx.id)
                        ctx.closed = True
                        ctx.buffer = ""
                        ctx.queue.put_nowait(None)

    async def _generate(self, ws: ServerConnection, ctx: _Context, rate: int, fmt: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await ctx.queue.get()
                if text is None:
                    await ws.send(json.dumps({self.final_key: True, "contextId": ctx.id}))
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
                    audio = _encode(tone_pcm(len(piece) * self.secs_per_char, rate), fmt)
                    message = {
                        "audio": base64.b64encode(audio).decode(),
                        self.final_key: False,
                        "contextId": ctx.id,
                        "alignment": {
                            "chars": list(piece),
                            "charStartTimesMs": [round(n * ms) for n in range(len(piece))],
                            "charDurationsMs": [round(ms)] * len(piece),
                        },
                    }
                    await ws.send(json.dumps(message))
                    self._chunks_sent += 1
                    await asyncio.sleep(self.chunk_delay)
