"""FakeDeepgramTTSServer: Deepgram's streaming text-to-speech WebSocket (``/v1/speak``).

The documented contract (Deepgram's "Continuous Text Stream" reference, its Flush / Clear /
Close pages, and the official ``deepgram-sdk``'s ``speak.v1`` models):

- **Handshake.** Query parameters ``model`` (an Aura voice, ``aura-2-helena-en``…; default
  ``aura-asteria-en``), ``encoding`` (``linear16`` by default, ``mulaw``, ``alaw``),
  ``sample_rate`` (default 24000 for ``linear16`` and 8000 for the G.711 encodings; 8000,
  16000, 24000, 32000 or 48000, and only 8000 or 16000 for G.711), ``speed`` (0.7 to 1.5) and
  ``mip_opt_out``; the key in ``Authorization: Token <key>`` (``Bearer`` for temporary tokens).
  A refusal is HTTP 400/401 with the reason in the ``dg-error`` header and a JSON body
  ``{"err_code", "err_msg", "request_id"}``, as on Deepgram's other endpoints.
- **Client messages** (JSON text): ``{"type": "Speak", "text"}`` adds text to the socket's
  buffer; ``{"type": "Flush"}`` speaks the buffer and is answered, after its last audio, with
  ``{"type": "Flushed", "sequence_id"}``; ``{"type": "Clear"}`` empties the buffer and stops
  the audio being sent, answered ``{"type": "Cleared", "sequence_id"}``; ``{"type": "Close"}``
  makes the server close the socket (1000). Anything else (binary data, bad JSON, an unknown
  type) closes the socket with ``1008 DATA-0000``, the way Deepgram's stream errors come.
- **Server messages.** ``{"type": "Metadata", "request_id", "model_name", "model_version",
  "model_uuid"}`` when the socket opens; audio as binary messages (raw, no container, in the
  asked encoding and rate); ``sequence_id`` counts the socket's answered Flush and Clear
  messages from 0 (the docs show 0 for the first). More than ``flush_limit`` (20) flushes in 60
  seconds get ``{"type": "Warning"}`` instead, and the text stays in the buffer. The SDK's
  model of a warning has ``description`` and ``code``; Deepgram's servers have been reported
  sending ``warn_msg`` and ``warn_code`` (deepgram-python-sdk PR 653): the fake sends both pairs.

Nothing is spoken before a Flush. The fake speaks a tone of ``secs_per_word`` per word, in
messages of ``chunk_secs``, ``chunk_delay`` seconds apart (a delay lets a test interrupt in the
middle of a reply); ``clear_delay`` keeps the audio going for a while after a Clear, as in-flight
audio does; :meth:`close_next` scripts a stream error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import pcm_to_alaw, pcm_to_ulaw
from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal, ServedWebsocketFake
from callpipe.testing.fakes._tts import speech_chunks
from callpipe.testing.fakes.deepgram import _refusal

ENCODINGS = ("linear16", "mulaw", "alaw")
RATES: dict[str, tuple[str, ...]] = {
    "linear16": ("8000", "16000", "24000", "32000", "48000"),
    "mulaw": ("8000", "16000"),
    "alaw": ("8000", "16000"),
}
DEFAULT_RATES = {"linear16": "24000", "mulaw": "8000", "alaw": "8000"}
DEFAULT_MODEL = "aura-asteria-en"
MODEL_UUID = "00000000-0000-4000-8000-0000000a0ba2"
FLUSH_WINDOW_SECS = 60.0


def _validate(request: Any) -> Refusal | None:
    """Refuse options the speak endpoint refuses (HTTP 400 + ``dg-error``)."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(request.path).query).items()}
    model = query.get("model", DEFAULT_MODEL)
    if not model.startswith("aura-"):
        return _refusal(400, "Bad Request", f"No such model: {model}")
    encoding = query.get("encoding", "linear16")
    if encoding not in ENCODINGS:
        return _refusal(400, "Bad Request", f"Unsupported encoding for streaming: {encoding}")
    rate = query.get("sample_rate", DEFAULT_RATES[encoding])
    if rate not in RATES[encoding]:
        return _refusal(400, "Bad Request", f"Unsupported sample_rate {rate} for {encoding}")
    speed = query.get("speed")
    if speed is not None:
        try:
            ok = 0.7 <= float(speed) <= 1.5
        except ValueError:
            ok = False
        if not ok:
            return _refusal(400, "Bad Request", "speed must be between 0.7 and 1.5")
    mip = query.get("mip_opt_out")
    if mip is not None and mip not in ("true", "false"):
        return _refusal(400, "Bad Request", "mip_opt_out must be true or false")
    return None


def _encode(pcm: bytes, encoding: str) -> bytes:
    if encoding == "mulaw":
        return pcm_to_ulaw(pcm)
    if encoding == "alaw":
        return pcm_to_alaw(pcm)
    return pcm


class FakeDeepgramTTSServer(ServedWebsocketFake):
    """See the module docstring. ``async with FakeDeepgramTTSServer() as fake: fake.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
        flush_limit: int = 20,
    ) -> None:
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.flush_limit = flush_limit
        self.clear_delay = 0.0
        """Seconds the server takes to act on a Clear; the audio already flushed goes on meanwhile
        (what a client receives between its Clear and the Cleared)."""
        self.messages: list[dict[str, Any]] = []
        """Every JSON message received, in order, across connections."""
        self.sent: list[dict[str, Any]] = []
        """Every JSON message sent (Metadata, Flushed, Cleared, Warning)."""
        self.spoken: list[str] = []
        """The text of each flush, as Deepgram would speak it."""
        self.spoken_voices: list[str] = []
        """The voice (``model``) each of ``spoken`` was spoken in."""
        self.audio_bytes = 0
        self.queries: list[dict[str, str]] = []
        self.connections = 0
        self._flush_times: deque[float] = deque()
        self._close_next: tuple[int, str] | None = None
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Token "), ("header", "Authorization", "Bearer ")],
            path="/v1/speak",
            validate=_validate,
            unauthorized=_refusal(401, "INVALID_AUTH", "Invalid credentials."),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes
        """Statuses for the next handshakes (``fake.fail_handshakes.append(429)``)."""

    def close_next(self, code: int, reason: str) -> None:
        """Close the socket with this code and reason on the next client message."""
        self._close_next = (code, reason)

    def _flush_allowed(self) -> bool:
        now = time.monotonic()
        while self._flush_times and now - self._flush_times[0] > FLUSH_WINDOW_SECS:
            self._flush_times.popleft()
        if len(self._flush_times) >= self.flush_limit:
            return False
        self._flush_times.append(now)
        return True

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        query = {k: v[-1] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        self.queries.append(query)
        session = _Session(self, ws, query)
        with contextlib.suppress(ConnectionClosed):
            await session.send_json(
                {
                    "type": "Metadata",
                    "request_id": str(uuid.uuid4()),
                    "model_name": session.model,
                    "model_version": "fake",
                    "model_uuid": MODEL_UUID,
                }
            )
            try:
                await session.serve()
            finally:
                await session.stop()


class _Session:
    """One socket: the text buffer, the flushes waiting to be spoken, the sequence ids."""

    def __init__(self, fake: FakeDeepgramTTSServer, ws: ServerConnection, query: dict[str, str]):
        self.fake = fake
        self.ws = ws
        self.model = query.get("model", DEFAULT_MODEL)
        self.encoding = query.get("encoding", "linear16")
        self.rate = int(query.get("sample_rate", DEFAULT_RATES[self.encoding]))
        self.buffer = ""
        self.sequence = 0
        self.jobs: asyncio.Queue[str] = asyncio.Queue()
        self.worker = asyncio.get_running_loop().create_task(self._speak_jobs())

    async def send_json(self, message: dict[str, Any]) -> None:
        self.fake.sent.append(message)
        await self.ws.send(json.dumps(message))

    def _next_sequence(self) -> int:
        sequence, self.sequence = self.sequence, self.sequence + 1
        return sequence

    async def stop(self) -> None:
        self.worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.worker

    async def serve(self) -> None:
        fake = self.fake
        async for raw in self.ws:
            if fake._close_next is not None:
                code, reason = fake._close_next
                fake._close_next = None
                await self.ws.close(code, reason)
                return
            try:
                if isinstance(raw, bytes):
                    raise ValueError("binary data")
                message = json.loads(raw)
                kind = message["type"]
            except (ValueError, KeyError, TypeError):
                await self.ws.close(1008, "DATA-0000")
                return
            fake.messages.append(message)
            if kind == "Speak" and isinstance(message.get("text"), str):
                self.buffer += message["text"]
            elif kind == "Flush":
                if not fake._flush_allowed():
                    description = "Rate limit exceeded for flushes. Please try again later."
                    await self.send_json(
                        {
                            "type": "Warning",
                            "description": description,
                            "code": "EXCESSIVE_FLUSH",
                            "warn_msg": description,
                            "warn_code": "EXCESSIVE_FLUSH",
                        }
                    )
                    continue
                text, self.buffer = self.buffer, ""
                self.jobs.put_nowait(text)
            elif kind == "Clear":
                await self._clear()
            elif kind == "Close":
                await self.ws.close(1000)
                return
            else:
                await self.ws.close(1008, "DATA-0000")
                return

    async def _clear(self) -> None:
        """Drop the buffer and every flush not spoken yet; stop the audio being sent."""
        self.buffer = ""
        if self.fake.clear_delay:
            await asyncio.sleep(self.fake.clear_delay)
        await self.stop()
        while not self.jobs.empty():
            self.jobs.get_nowait()
        await self.send_json({"type": "Cleared", "sequence_id": self._next_sequence()})
        self.worker = asyncio.get_running_loop().create_task(self._speak_jobs())

    async def _speak_jobs(self) -> None:
        fake = self.fake
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await self.jobs.get()
                fake.spoken.append(text)
                fake.spoken_voices.append(self.model)
                secs = len(text.split()) * fake.secs_per_word
                for chunk in speech_chunks(secs, self.rate, fake.chunk_secs):
                    audio = _encode(chunk, self.encoding)
                    fake.audio_bytes += len(audio)
                    await self.ws.send(audio)
                    if fake.chunk_delay:
                        await asyncio.sleep(fake.chunk_delay)
                await self.send_json({"type": "Flushed", "sequence_id": self._next_sequence()})
