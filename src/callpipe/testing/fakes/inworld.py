"""FakeInworldServer and FakeInworldHTTPServer: Inworld's text-to-speech WebSocket and HTTP API
on 127.0.0.1.

The documented contract (https://docs.inworld.ai/api-reference/ttsAPI/texttospeech/
synthesize-speech-websocket, .../synthesize-speech-stream, .../synthesize-speech and
https://docs.inworld.ai/docs/tts/capabilities/generating-audio):

- **Auth.** ``Authorization: Basic <key>`` on the handshake and on every request (a wrong key:
  HTTP 401 with a ``google.rpc.Status``-shaped JSON body).
- **Socket** (``/tts/v1/voice:streamBidirectional``). Client messages, each with an optional
  ``contextId``: ``create`` (``voiceId``, ``modelId``, ``audioConfig``, ``temperature``,
  ``timestampType``, ``maxBufferDelayMs``, ``bufferCharThreshold``, ``applyTextNormalization``,
  ``autoMode``, ``timestampTransportStrategy``, ...), ``send_text`` (``text`` of at most 1,000
  characters, optional ``flush_context``), ``flush_context`` and ``close_context`` (a flush,
  then the close). At most five contexts per connection. Every answer is ``{"result":
  {"contextId", "status": {"code", "message", "details"}, <event>}}`` with the event one of
  ``contextCreated`` (the context's configuration), ``audioChunk`` (``audioContent``,
  ``usage``, ``timestampInfo.wordAlignment``), ``flushCompleted`` and ``contextClosed``. A
  refused message gets a non-zero ``status.code`` (5 for an unknown context) and the socket
  stays open.
- **Buffering.** Text waits in its context's buffer until a flush, ``bufferCharThreshold``
  characters, or (``autoMode``) what the server judges a good moment: here, a sentence's end.
  ``maxBufferDelayMs`` is not modelled.
- **HTTP.** ``POST /tts/v1/voice:stream`` answers newline-delimited ``{"result":
  {"audioContent", "timestampInfo"?}}`` objects; ``POST /tts/v1/voice`` one ``{"audioContent",
  "timestampInfo"?, "usage"}``. Body: ``text`` (at most 2,000 characters), ``voiceId``,
  ``modelId``, ``audioConfig``, ``temperature``, ``timestampType``, ``deliveryMode``,
  ``language``, ... A bad request: 400 with a ``google.rpc.Status`` body.
- **Audio.** ``PCM`` is headerless 16-bit; ``LINEAR16`` has a WAV header on every chunk; ``WAV``
  on the first chunk of each HTTP response and of each socket generation; ``MULAW`` and
  ``ALAW`` are headerless G.711 here. The default encoding (MP3) is refused by the fake.

The fake speaks a tone of ``secs_per_word`` per word, times each word (times restart at 0 with
each generation) and attaches a word's timing to the chunk its audio starts in. A connection's
generations are produced one after another, whatever their context (Inworld runs contexts side
by side), so a closed context's remaining audio comes before a newer context's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.routing import Route
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import pcm_to_alaw, pcm_to_ulaw
from callpipe.audio.wav import pcm_to_wav
from callpipe.testing.fakes._server import (
    DropsMidAudio,
    LocalASGIServer,
    LocalWebsocketServer,
    Refusal,
    ServedHTTPFake,
    ServedWebsocketFake,
    fake_app,
)
from callpipe.testing.fakes.openai import tone_pcm

SOCKET_PATH = "/tts/v1/voice:streamBidirectional"
STREAM_PATH = "/tts/v1/voice:stream"
SYNC_PATH = "/tts/v1/voice"
ENCODINGS = ("PCM", "LINEAR16", "WAV", "MULAW", "ALAW")
"""What the fake can produce (Inworld also serves MP3, its default, OGG_OPUS and FLAC)."""
MAX_CONTEXTS = 5
MAX_SEND_TEXT = 1000
MAX_HTTP_TEXT = 2000
SENTENCE_END = (".", "?", "!")
INVALID_ARGUMENT = 3
NOT_FOUND = 5
RESOURCE_EXHAUSTED = 8
UNAUTHENTICATED = 16


def rpc_status(code: int, message: str) -> dict[str, Any]:
    """A ``google.rpc.Status`` object, as Inworld's errors and statuses are shaped."""
    return {"code": code, "message": message, "details": []}


def config_problem(config: dict[str, Any], *, text_limit: int | None = None) -> str | None:
    """Why a ``create`` configuration or an HTTP body would be refused (None: accepted)."""
    if text_limit is not None:
        text = config.get("text")
        if not isinstance(text, str) or not text.strip():
            return "text is required"
        if len(text) > text_limit:
            return f"text longer than {text_limit} characters"
    for name in ("voiceId", "modelId"):
        if not isinstance(config.get(name), str) or not config[name]:
            return f"{name} is required"
    audio = config.get("audioConfig") or {}
    if not isinstance(audio, dict):
        return "audioConfig must be an object"
    encoding = audio.get("audioEncoding", "MP3")
    if encoding not in ENCODINGS:
        return f"audioEncoding {encoding!r}: the fake serves {', '.join(ENCODINGS)}"
    rate = audio.get("sampleRateHertz", 48000)
    if not isinstance(rate, int) or not 8000 <= rate <= 48000:
        return "sampleRateHertz must be between 8000 and 48000"
    speed = audio.get("speakingRate", 1.0)
    if not isinstance(speed, int | float) or not 0.5 <= speed <= 1.5:
        return "speakingRate must be between 0.5 and 1.5"
    return None


def _encode(pcm: bytes, encoding: str, rate: int, header: bool) -> bytes:
    if encoding == "MULAW":
        return pcm_to_ulaw(pcm)
    if encoding == "ALAW":
        return pcm_to_alaw(pcm)
    return pcm_to_wav(pcm, rate) if header else pcm


def speech(
    text: str, secs_per_word: float, chunk_secs: float, rate: int
) -> list[tuple[bytes, list[tuple[str, float, float]]]]:
    """The fake's audio for ``text`` in PCM chunks, each with the words starting in it."""
    words = text.split()
    pcm = tone_pcm(len(words) * secs_per_word, rate)
    step = max(2, int(chunk_secs * rate) * 2)
    chunks: list[tuple[bytes, list[tuple[str, float, float]]]] = []
    timed = [(w, i * secs_per_word, (i + 1) * secs_per_word) for i, w in enumerate(words)]
    for i in range(0, len(pcm), step):
        start, end = i / 2 / rate, (i + step) / 2 / rate
        chunks.append((pcm[i : i + step], [w for w in timed if start <= w[1] < end]))
    return chunks


def timestamp_info(words: list[tuple[str, float, float]]) -> dict[str, Any]:
    return {
        "wordAlignment": {
            "words": [w for w, _, _ in words],
            "wordStartTimeSeconds": [round(s, 6) for _, s, _ in words],
            "wordEndTimeSeconds": [round(e, 6) for _, _, e in words],
        }
    }


@dataclass
class _Context:
    config: dict[str, Any]
    buffer: str = ""

    @property
    def auto(self) -> bool:
        return bool(self.config.get("autoMode"))

    @property
    def threshold(self) -> int:
        value = self.config.get("bufferCharThreshold")
        return value if isinstance(value, int) and value > 0 else 250


class FakeInworldServer(DropsMidAudio, ServedWebsocketFake):
    """See the module docstring. ``async with FakeInworldServer() as server: server.url``."""

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
        self.headers: list[dict[str, str]] = []
        self.events: list[dict[str, Any]] = []
        """Everything sent to clients."""
        self.generations: list[tuple[str, str]] = []
        """(contextId, text) of each synthesis run."""
        self.connections = 0
        self.error_next: str | None = None
        """Refuse the next client message with this message (status code 3)."""
        self.drop_after_chunks: int | None = None
        """Abort the socket (no close frame) once this many chunks were sent, once."""
        self._chunks_sent = 0
        self.skip_close = 0
        """Leave out the ``contextClosed`` of this many next closes (a server that hangs)."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Basic ")],
            path=SOCKET_PATH,
            unauthorized=Refusal(401, json.dumps(rpc_status(UNAUTHENTICATED, "invalid key"))),
        )

    async def _send(self, ws: ServerConnection, context_id: str | None, **event: Any) -> None:
        result = {"contextId": context_id, **event}
        result.setdefault("status", rpc_status(0, ""))
        message = {"result": result}
        self.events.append(message)
        await ws.send(json.dumps(message))

    async def _refuse(
        self, ws: ServerConnection, context_id: str | None, code: int, text: str
    ) -> None:
        await self._send(ws, context_id, status=rpc_status(code, text))

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        contexts: dict[str, _Context] = {}
        work: asyncio.Queue[tuple[str, str, str, dict[str, Any]]] = asyncio.Queue()
        synth = asyncio.get_running_loop().create_task(self._synthesize(ws, work))
        try:
            async for raw in ws:
                await self._receive(ws, contexts, work, raw)
        except ConnectionClosed:
            pass
        finally:
            synth.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await synth

    async def _receive(
        self,
        ws: ServerConnection,
        contexts: dict[str, _Context],
        work: asyncio.Queue[tuple[str, str, str, dict[str, Any]]],
        raw: str | bytes,
    ) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            await self._refuse(ws, None, INVALID_ARGUMENT, "malformed message: not JSON")
            return
        if not isinstance(message, dict):
            await self._refuse(ws, None, INVALID_ARGUMENT, "malformed message")
            return
        self.messages.append(message)
        context_id = message.get("contextId") or "default"
        if self.error_next is not None:
            error, self.error_next = self.error_next, None
            await self._refuse(ws, context_id, INVALID_ARGUMENT, error)
            return
        if "create" in message:
            config = message["create"]
            problem = config_problem(config) if isinstance(config, dict) else "create: object"
            if problem is not None:
                await self._refuse(ws, context_id, INVALID_ARGUMENT, problem)
            elif context_id in contexts:
                await self._refuse(ws, context_id, INVALID_ARGUMENT, "context already exists")
            elif len(contexts) >= MAX_CONTEXTS:
                await self._refuse(ws, context_id, RESOURCE_EXHAUSTED, "too many contexts")
            else:
                contexts[context_id] = _Context(config)
                await self._send(ws, context_id, contextCreated=config)
            return
        ctx = contexts.get(context_id)
        if ctx is None:
            await self._refuse(ws, context_id, NOT_FOUND, f"Context {context_id} not found")
            return
        if "send_text" in message:
            body = message["send_text"]
            text = body.get("text") if isinstance(body, dict) else None
            if not isinstance(text, str):
                await self._refuse(ws, context_id, INVALID_ARGUMENT, "text must be a string")
                return
            if len(text) > MAX_SEND_TEXT:
                await self._refuse(ws, context_id, INVALID_ARGUMENT, "text too long")
                return
            ctx.buffer += text
            stripped = ctx.buffer.rstrip()
            if (
                "flush_context" in body
                or len(ctx.buffer) >= ctx.threshold
                or (ctx.auto and stripped.endswith(SENTENCE_END))
            ):
                self._flush(context_id, ctx, work)
        elif "flush_context" in message:
            self._flush(context_id, ctx, work)
        elif "close_context" in message:
            self._flush(context_id, ctx, work)
            del contexts[context_id]
            work.put_nowait(("close", context_id, "", {}))
        else:
            await self._refuse(ws, context_id, INVALID_ARGUMENT, "unknown message")

    @staticmethod
    def _flush(
        context_id: str, ctx: _Context, work: asyncio.Queue[tuple[str, str, str, dict[str, Any]]]
    ) -> None:
        if ctx.buffer.strip():
            work.put_nowait(("speak", context_id, ctx.buffer, ctx.config))
        ctx.buffer = ""
        work.put_nowait(("flushed", context_id, "", {}))

    async def _synthesize(
        self,
        ws: ServerConnection,
        work: asyncio.Queue[tuple[str, str, str, dict[str, Any]]],
    ) -> None:
        while True:
            kind, context_id, text, config = await work.get()
            if kind == "close":
                if self.skip_close:
                    self.skip_close -= 1
                    continue
                await self._send(ws, context_id, contextClosed={})
            elif kind == "flushed":
                await self._send(ws, context_id, flushCompleted={})
            elif not await self._generate(ws, context_id, config, text):
                return

    async def _generate(
        self, ws: ServerConnection, context_id: str, config: dict[str, Any], text: str
    ) -> bool:
        """One generation's audio chunks; False once a scripted drop cut the socket."""
        self.generations.append((context_id, text))
        audio = config.get("audioConfig") or {}
        encoding = audio.get("audioEncoding", "PCM")
        rate = audio.get("sampleRateHertz", 48000)
        for i, (pcm, words) in enumerate(speech(text, self.secs_per_word, self.chunk_secs, rate)):
            if self._drop_due(ws):
                return False
            self._chunks_sent += 1
            header = encoding == "LINEAR16" or (encoding == "WAV" and i == 0)
            chunk: dict[str, Any] = {
                "audioContent": base64.b64encode(_encode(pcm, encoding, rate, header)).decode(),
                "usage": {
                    "processedCharactersCount": len(text) if i == 0 else 0,
                    "modelId": config.get("modelId"),
                },
            }
            if words and config.get("timestampType") == "WORD":
                chunk["timestampInfo"] = timestamp_info(words)
            await self._send(ws, context_id, audioChunk=chunk)
            await asyncio.sleep(self.chunk_delay)
        return True


# ---------------------------------------------------------------------- HTTP


class FakeInworldHTTPServer(ServedHTTPFake):
    """Inworld's ``POST /tts/v1/voice:stream`` and ``POST /tts/v1/voice`` on 127.0.0.1 (see the
    module docstring); ``api_key`` None accepts any key."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.requests: list[dict[str, Any]] = []
        """Each authorized request's JSON body."""
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: deque[int] = deque()
        """HTTP statuses for the next valid requests (200 = speak)."""
        self.stream_error_after: int | None = None
        """Cut the next stream with an ``error`` line after this many chunks, once."""
        routes = [
            Route(STREAM_PATH, self._speak, methods=["POST"]),
            Route(SYNC_PATH, self._speak, methods=["POST"]),
        ]
        self._server = LocalASGIServer(fake_app(routes))

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        self.paths.append(request.url.path)
        if self.api_key is not None and headers.get("authorization") != f"Basic {self.api_key}":
            return JSONResponse(rpc_status(UNAUTHENTICATED, "invalid key"), 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse(rpc_status(INVALID_ARGUMENT, "invalid JSON body"), 400)
        if not isinstance(body, dict):
            return JSONResponse(rpc_status(INVALID_ARGUMENT, "expected an object"), 400)
        self.requests.append(body)
        problem = config_problem(body, text_limit=MAX_HTTP_TEXT)
        if problem is not None:
            return JSONResponse(rpc_status(INVALID_ARGUMENT, problem), 400)
        status = self.statuses.popleft() if self.statuses else 200
        if status != 200:
            return JSONResponse(rpc_status(14, f"scripted error {status}"), status)
        audio = body.get("audioConfig") or {}
        encoding, rate = audio["audioEncoding"], audio.get("sampleRateHertz", 48000)
        chunks = speech(body["text"], self.secs_per_word, self.chunk_secs, rate)
        timed = body.get("timestampType") == "WORD"
        if request.url.path == SYNC_PATH:
            pcm = b"".join(c for c, _ in chunks)
            whole: dict[str, Any] = {
                "audioContent": base64.b64encode(
                    _encode(pcm, encoding, rate, encoding in ("LINEAR16", "WAV"))
                ).decode(),
                "usage": {
                    "processedCharactersCount": len(body["text"]),
                    "modelId": body["modelId"],
                },
            }
            if timed:
                whole["timestampInfo"] = timestamp_info([w for _, ws in chunks for w in ws])
            return JSONResponse(whole)
        cut, self.stream_error_after = self.stream_error_after, None

        async def lines() -> Any:
            for i, (pcm, words) in enumerate(chunks):
                if cut is not None and i >= cut:
                    yield json.dumps({"error": rpc_status(13, "synthesis failed")}) + "\n"
                    return
                header = encoding == "LINEAR16" or (encoding == "WAV" and i == 0)
                result: dict[str, Any] = {
                    "audioContent": base64.b64encode(_encode(pcm, encoding, rate, header)).decode()
                }
                if timed and words:
                    result["timestampInfo"] = timestamp_info(words)
                yield json.dumps({"result": result}) + "\n"
                await asyncio.sleep(self.chunk_delay)

        return StreamingResponse(lines(), media_type="application/json")
