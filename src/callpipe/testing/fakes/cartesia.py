"""FakeCartesiaServer: Cartesia's TTS WebSocket (``/tts/websocket``) on 127.0.0.1.

The documented contract (https://docs.cartesia.ai/api-reference/tts/websocket and the official
``cartesia`` SDK's models):

- **Auth.** ``Authorization: Bearer <key>`` (current docs and SDK), ``X-API-Key`` (accepted by
  the server), or the older ``?api_key=`` / ``?access_token=`` query parameters; a
  ``Cartesia-Version`` header or ``?cartesia_version=`` is required.
- **Requests.** ``{"model_id", "transcript", "voice": {"mode": "id", "id"}, "context_id",
  "output_format": {"container": "raw", "encoding": pcm_s16le|pcm_f32le|pcm_mulaw|pcm_alaw,
  "sample_rate"}, "add_timestamps", "continue", "max_buffer_delay_ms", "generation_config",
  "language"}``; inputs with the same ``context_id`` continue one utterance, ``continue: false``
  ends it; ``{"context_id", "cancel": true}`` cancels.
- **Buffering.** ``max_buffer_delay_ms`` (default 3000) holds text that does not end a sentence
  until more text arrives or the delay passes; 0 generates at once.
- **Expiry.** A context expires ``context_expiry_secs`` after its last audio; a later input gets
  an error ``"Context has expired"`` for it.
- **Responses** per context: ``{"type": "chunk", "data", "done", "status_code", "step_time",
  "context_id"}``, ``{"type": "timestamps", "word_timestamps": {"words", "start", "end"}}``
  (seconds from the context start), ``{"type": "done"}``; errors ``{"type": "error", "done":
  true, "status_code", "title", "message", "error_code", "request_id", "context_id"}``.

The fake speaks a tone of ``secs_per_word`` per word, sends each input's word timestamps before
its audio (the order a client must cope with), and can be told to drop the socket.

:class:`FakeCartesiaHTTPServer` serves the HTTP ``POST /tts/bytes`` on a port of its own (see
the comment above it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Unpack
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import pcm_to_alaw, pcm_to_ulaw
from callpipe.testing.fakes._server import (
    CountsStreams,
    DropsMidAudio,
    LocalWebsocketServer,
    Refusal,
    ServedWebsocketFake,
)
from callpipe.testing.fakes._stt import Listener, ListeningFake, ListeningOptions
from callpipe.testing.fakes._tts import SpeechHTTPFake, speech_chunks
from callpipe.testing.fakes.openai import tone_pcm

ENCODINGS = ("pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw")
RATES = (8000, 16000, 22050, 24000, 44100, 48000)
REQUIRED = ("context_id", "model_id", "transcript", "voice", "output_format")
SENTENCE_END = (".", "!", "?", "…")
_AUTH = [
    ("header", "Authorization", "Bearer "),
    ("header", "X-API-Key", ""),
    ("query", "api_key", ""),
    ("query", "access_token", ""),
]
"""The ways Cartesia takes the key (the TTS and STT sockets alike)."""
_UNAUTHORIZED = Refusal(401, json.dumps({"error": "Invalid API key"}))


def _validate(request: Any) -> Refusal | None:
    query = parse_qs(urlsplit(request.path).query)
    if not request.headers.get("Cartesia-Version") and "cartesia_version" not in query:
        return Refusal(400, json.dumps({"error": "Cartesia-Version header is required"}))
    return None


def _encode(pcm: bytes, encoding: str) -> bytes:
    if encoding == "pcm_mulaw":
        return pcm_to_ulaw(pcm)
    if encoding == "pcm_alaw":
        return pcm_to_alaw(pcm)
    if encoding == "pcm_f32le":
        import numpy as np

        return (np.frombuffer(pcm, dtype="<i2").astype("<f4") / 32768.0).tobytes()
    return pcm


def request_problem(message: dict[str, Any]) -> str | None:
    """Why a generation request is invalid (None: it is valid)."""
    missing = [name for name in REQUIRED if name not in message]
    if missing:
        return f"missing required field(s): {', '.join(missing)}"
    fmt = message["output_format"]
    if not isinstance(fmt, dict) or fmt.get("container") != "raw":
        return "output_format.container must be raw"
    if fmt.get("encoding") not in ENCODINGS:
        return f"output_format.encoding must be one of {', '.join(ENCODINGS)}"
    if fmt.get("sample_rate") not in RATES:
        return "output_format.sample_rate is not supported"
    voice = message["voice"]
    if not isinstance(voice, dict) or voice.get("mode") != "id" or not voice.get("id"):
        return "voice must be {mode: id, id}"
    delay = message.get("max_buffer_delay_ms")
    if delay is not None and not (isinstance(delay, int) and 0 <= delay <= 5000):
        return "max_buffer_delay_ms must be between 0 and 5000"
    return None


@dataclass
class _Context:
    id: str
    inputs: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    offset_secs: float = 0.0
    task: asyncio.Task[None] | None = None
    last_audio_at: float | None = None
    busy: bool = False
    finished: bool = False


class FakeCartesiaServer(DropsMidAudio, ServedWebsocketFake):
    """See the module docstring. ``async with FakeCartesiaServer() as server: server.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
        context_expiry_secs: float = 1.0,
    ) -> None:
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.context_expiry_secs = context_expiry_secs
        self.messages: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        self.done: list[str] = []
        self.expired: list[str] = []
        """Contexts an input arrived for after they had expired."""
        self.errors: list[dict[str, Any]] = []
        self.buffered_secs: list[float] = []
        """How long each input waited in the server's text buffer."""
        self.versions: list[str] = []
        self.connections = 0
        self.drop_after_chunks: int | None = None
        self.error_next: str | None = None
        self._chunks_sent = 0
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=_AUTH,
            path="/tts/websocket",
            validate=_validate,
            unauthorized=_UNAUTHORIZED,
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes
        """Statuses for the next handshakes (``fake.fail_handshakes.append(429)``)."""

    # ------------------------------------------------------------------ protocol

    async def _error(
        self, ws: ServerConnection, context_id: str | None, title: str, message: str, code: str
    ) -> None:
        error = {
            "type": "error",
            "done": True,
            "status_code": 400,
            "title": title,
            "message": message,
            "error_code": code,
            "request_id": uuid.uuid4().hex,
            "context_id": context_id,
        }
        self.errors.append(error)
        await ws.send(json.dumps(error))

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        self.versions.append(
            ws.request.headers.get("Cartesia-Version")
            or parse_qs(urlsplit(ws.request.path).query).get("cartesia_version", [""])[0]
        )
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
                    await self._error(ws, context_id, "Invalid request", error, "invalid_request")
                    continue
                problem = request_problem(message)
                if problem is not None:
                    await self._error(ws, context_id, "Invalid request", problem, "invalid_request")
                    continue
                ctx = contexts.get(context_id)
                if ctx is not None and self._is_expired(ctx):
                    self.expired.append(context_id)
                    contexts.pop(context_id, None)
                    await self._error(
                        ws, context_id, "Context expired", "Context has expired", "context_expired"
                    )
                    continue
                if ctx is None or ctx.finished:
                    ctx = contexts[context_id] = _Context(context_id)
                    ctx.task = asyncio.get_running_loop().create_task(self._generate(ws, ctx))
                ctx.inputs.put_nowait(message)
        except ConnectionClosed:
            pass
        finally:
            for ctx in contexts.values():
                if ctx.task is not None:
                    ctx.task.cancel()

    def _is_expired(self, ctx: _Context) -> bool:
        if ctx.busy or ctx.last_audio_at is None or not ctx.inputs.empty():
            return False
        return time.monotonic() - ctx.last_audio_at > self.context_expiry_secs

    async def _buffer(self, ctx: _Context, message: dict[str, Any]) -> dict[str, Any]:
        """Hold text that does not end a sentence until more comes or the delay passes."""
        delay = message.get("max_buffer_delay_ms", 3000) / 1000
        text = str(message.get("transcript", ""))
        started = time.monotonic()
        while (
            delay > 0
            and message.get("continue", False)
            and text.strip()
            and not text.rstrip().rstrip("\"')]”’").endswith(SENTENCE_END)
        ):
            left = delay - (time.monotonic() - started)
            if left <= 0:
                break
            try:
                following = await asyncio.wait_for(ctx.inputs.get(), left)
            except TimeoutError:
                break
            if following is None:
                break
            text += str(following.get("transcript", ""))
            message = {**following, "transcript": text}
        self.buffered_secs.append(time.monotonic() - started)
        return message

    async def _generate(self, ws: ServerConnection, ctx: _Context) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                message = await ctx.inputs.get()
                if message is None:
                    return
                message = await self._buffer(ctx, message)
                ctx.busy = True
                fmt = message.get("output_format", {})
                rate = int(fmt.get("sample_rate", 16000))
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
                chunks = speech_chunks(len(words) * self.secs_per_word, rate, self.chunk_secs)
                ctx.offset_secs += len(words) * self.secs_per_word
                for chunk in chunks:
                    if self._drop_due(ws):
                        return
                    audio = _encode(chunk, str(fmt.get("encoding")))
                    await ws.send(
                        json.dumps(
                            {
                                "type": "chunk",
                                "data": base64.b64encode(audio).decode(),
                                "done": False,
                                "status_code": 206,
                                "step_time": 1.0,
                                "context_id": ctx.id,
                            }
                        )
                    )
                    ctx.last_audio_at = time.monotonic()
                    self._chunks_sent += 1
                    await asyncio.sleep(self.chunk_delay)
                ctx.busy = False
                if chunks:
                    ctx.last_audio_at = time.monotonic()
                if not message.get("continue", False):
                    ctx.finished = True
                    self.done.append(ctx.id)
                    await ws.send(
                        json.dumps(
                            {"type": "done", "done": True, "status_code": 206, "context_id": ctx.id}
                        )
                    )
                    return


# ---------------------------------------------------------------------- HTTP text-to-speech
#
# ``POST /tts/bytes`` (https://docs.cartesia.ai/api-reference/tts/bytes and the ``cartesia``
# SDK's ``tts.generate`` with its ``TTSGenerateParams``):
#
# - **Headers.** The key as for the socket (``Authorization: Bearer`` in the SDK, ``X-API-Key``
#   in Cartesia's curl examples); ``Cartesia-Version`` is required.
# - **Body.** ``{"model_id", "transcript", "voice": "<id>" | {"mode"?: "id", "id"},
#   "output_format": {"container": "raw" | "wav" | "mp3", "encoding", "sample_rate"},
#   "language" | "locale", "generation_config": {"volume", "speed", "emotion"},
#   "pronunciation_dict_id", "normalization", "save", "speed"}``.
# - **Answer.** The audio as the body streams; errors as ``{"error_code", "title", "message",
#   "request_id"}`` (Cartesia's JSON errors from version 2026-03-01 on).
#
# The fake speaks ``secs_per_word`` of tone per word in chunks of ``chunk_secs``, in a ``raw`` or
# ``wav`` container (it makes no MP3: a 400 says so), and counts the answers a client abandoned.


def _wav_header(encoding: str, rate: int, data_bytes: int) -> bytes:
    """A WAV header for ``data_bytes`` of ``encoding`` audio (mono)."""
    import struct

    tag, width = {"pcm_s16le": (1, 2), "pcm_f32le": (3, 4), "pcm_alaw": (6, 1)}.get(
        encoding,
        (7, 1),  # pcm_mulaw
    )
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * width, width, width * 8)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def bytes_request_problem(body: Any) -> str | None:
    """Why a ``/tts/bytes`` body is invalid (None: it is valid)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for name in ("model_id", "transcript", "voice", "output_format"):
        if name not in body:
            return f"missing required field: {name}"
    voice = body["voice"]
    if isinstance(voice, dict):
        if not voice.get("id") or voice.get("mode", "id") != "id":
            return "voice must be a voice id or {mode: id, id}"
    elif not isinstance(voice, str) or not voice:
        return "voice must be a voice id or {mode: id, id}"
    fmt = body["output_format"]
    if not isinstance(fmt, dict) or fmt.get("container") not in ("raw", "wav", "mp3"):
        return "output_format.container must be raw, wav or mp3"
    if fmt["container"] == "mp3":
        return "this fake produces raw and wav audio only"
    if fmt.get("encoding") not in ENCODINGS:
        return f"output_format.encoding must be one of {', '.join(ENCODINGS)}"
    if fmt.get("sample_rate") not in RATES:
        return "output_format.sample_rate is not supported"
    if body.get("language") is not None and body.get("locale") is not None:
        return "set language or locale, not both"
    config = body.get("generation_config")
    if config is not None:
        if not isinstance(config, dict):
            return "generation_config must be an object"
        speed, volume = config.get("speed"), config.get("volume")
        if speed is not None and not 0.6 <= float(speed) <= 1.5:
            return "generation_config.speed must be between 0.6 and 1.5"
        if volume is not None and not 0.5 <= float(volume) <= 2.0:
            return "generation_config.volume must be between 0.5 and 2.0"
    return None


class FakeCartesiaHTTPServer(CountsStreams, SpeechHTTPFake):
    """Cartesia's ``POST /tts/bytes`` on 127.0.0.1 (see the comment above this class)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__("/tts/bytes", self._bytes, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.completed_streams = 0
        self.cancelled_streams = 0
        """Answers the client stopped reading before their end (a barge-in closing them)."""

    @staticmethod
    def _error(status: int, code: str, title: str, message: str) -> Any:
        from starlette.responses import JSONResponse

        body = {
            "error_code": code,
            "title": title,
            "message": message,
            "request_id": str(uuid.uuid4()),
        }
        return JSONResponse(body, status)

    def _authorized(self, headers: Any) -> bool:
        if self.api_key is None:
            return True
        return bool(
            headers.get("x-api-key") == self.api_key
            or headers.get("authorization") == f"Bearer {self.api_key}"
        )

    async def _bytes(self, request: Any) -> Any:
        from starlette.responses import StreamingResponse

        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if not self._authorized(request.headers):
            return self._error(401, "invalid_api_key", "Unauthorized", "Invalid API key")
        if not request.headers.get("cartesia-version"):
            return self._error(
                400, "invalid_request", "Invalid request", "Cartesia-Version header is required"
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._error(400, "invalid_request", "Invalid request", "invalid JSON")
        self.requests.append(body)
        problem = bytes_request_problem(body)
        if problem is not None:
            return self._error(400, "invalid_request", "Invalid request", problem)
        status = self._next_status()
        if status != 200:
            return self._error(status, "scripted_error", "Scripted error", f"HTTP {status}")
        fmt = body["output_format"]
        rate, encoding = int(fmt["sample_rate"]), str(fmt["encoding"])
        words = max(1, len(str(body["transcript"]).split()))
        pcm = tone_pcm(words * self.secs_per_word, rate)
        step = max(2, int(self.chunk_secs * rate) * 2)
        wav = fmt["container"] == "wav"

        async def audio() -> AsyncGenerator[bytes, None]:
            if wav:
                yield _wav_header(encoding, rate, len(_encode(pcm, encoding)))
            for i in range(0, len(pcm), step):
                yield _encode(pcm[i : i + step], encoding)
                await asyncio.sleep(self.chunk_delay)

        media = "audio/wav" if wav else "application/octet-stream"
        return StreamingResponse(self._counted(audio()), media_type=media)


# ---------------------------------------------------------------------- speech-to-text
#
# Cartesia's realtime STT WebSocket (``/stt/websocket``), separate from the TTS fake above. The
# documented contract (https://docs.cartesia.ai/api-reference/stt/stt and the ``cartesia`` SDK's
# ``stt.manual_finalize`` client and ``types/stt`` models):
#
# - **Handshake.** The key as for TTS; ``Cartesia-Version`` header or ``?cartesia_version=``;
#   the query carries ``model`` (required), ``encoding`` (one of ``STT_ENCODINGS``, required),
#   ``sample_rate`` (required), ``language`` (ISO 639-1), repeated ``keyterm`` parameters,
#   ``max_silence_duration_secs`` and ``min_volume``. A bad query is refused with HTTP 400.
# - **Client messages.** Binary audio; the text commands ``finalize`` (transcribe what is held
#   now; answered with ``flush_done``) and ``close`` (transcribe what is held, answer ``done``,
#   close the socket; ``done`` is the command's older name and is treated the same way).
# - **Server messages.** ``{"type": "transcript", "request_id", "text", "is_final",
#   "duration", "language"}`` (``text`` is new since the last final transcript),
#   ``{"type": "flush_done", "request_id"}``, ``{"type": "done", "request_id"}``, and
#   ``{"type": "error", "status_code", "title", "message", "error_code", "request_id"}``.
#
# The fake "hears" speech by energy, as the Deepgram fake does: loud audio opens an utterance,
# an interim transcript follows every ``interim_secs`` of speech (the first words of the next
# scripted transcript), and ``finalize`` / ``close`` — or ``max_silence_duration_secs`` of quiet
# when the query asks for it — yields the final transcript (``transcripts``; ``"hello"`` when
# empty). Time is counted in received audio, so results are deterministic.

STT_ENCODINGS = ("pcm_s16le", "pcm_s32le", "pcm_f16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw")
"""The ``encoding`` values of the SDK's ``STTEncoding``."""
STT_PATH = "/stt/websocket"


def _stt_refusal(message: str) -> Refusal:
    body = {"type": "error", "status_code": 400, "title": "Invalid request", "message": message}
    return Refusal(400, json.dumps(body))


def _validate_stt(request: Any) -> Refusal | None:
    refusal = _validate(request)
    if refusal is not None:
        return refusal
    query = parse_qs(urlsplit(request.path).query)
    for name in ("model", "encoding", "sample_rate"):
        if not query.get(name):
            return _stt_refusal(f"missing required query parameter: {name}")
    if query["encoding"][-1] not in STT_ENCODINGS:
        return _stt_refusal(f"unsupported encoding: {query['encoding'][-1]}")
    if not query["sample_rate"][-1].isdigit():
        return _stt_refusal("sample_rate must be an integer")
    keyterms = query.get("keyterm", [])
    if len(keyterms) > 100 or sum(len(term) for term in keyterms) > 1200:
        return _stt_refusal("at most 100 keyterms totaling 1200 characters")
    return None


class FakeCartesiaSTTServer(ListeningFake):
    """Cartesia's STT WebSocket on 127.0.0.1 (see the comment above this class)."""

    def __init__(self, **options: Unpack[ListeningOptions]) -> None:
        super().__init__(
            auth=_AUTH, path=STT_PATH, validate=_validate_stt, unauthorized=_UNAUTHORIZED, **options
        )
        self.raw_queries: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.commands: list[str] = []
        """Text messages received (``finalize``, ``close``, ...)."""
        self.audio_at_finalize: list[int] = []
        self.answer_close = True
        """False: ``close`` is recorded but never answered, and the socket stays open."""

    async def _handle(self, ws: ServerConnection) -> None:
        query = self._connected(ws)
        assert ws.request is not None
        self.raw_queries.append(urlsplit(ws.request.path).query)
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        session = _STTSession(self, ws, {k: v[-1] for k, v in query.items()})
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if self.error_next is not None:
                    error, self.error_next = self.error_next, None
                    await session.error(error)
                    continue
                if isinstance(message, bytes):
                    self.audio += message
                    await session.audio(message)
                    continue
                self.commands.append(message)
                if message == "finalize":
                    self.audio_at_finalize.append(len(self.audio))
                    await session.finalize()
                    await self._send(ws, {"type": "flush_done", "request_id": session.request_id})
                elif message in ("close", "done"):
                    if not self.answer_close:
                        continue
                    await session.finalize()
                    await self._send(ws, {"type": "done", "request_id": session.request_id})
                    await ws.close()
                    return
                else:
                    await session.error(f"unknown command: {message[:40]}")


class _STTSession(Listener):
    """One STT connection: the utterance being heard, transcripts sent."""

    def __init__(self, fake: FakeCartesiaSTTServer, ws: ServerConnection, query: dict[str, str]):
        silence = query.get("max_silence_duration_secs")
        super().__init__(
            fake,
            rate=int(query.get("sample_rate", "16000")),
            ulaw=query.get("encoding", "pcm_s16le") == "pcm_mulaw",
            silence_secs=float(silence) if silence else None,
        )
        self.ws = ws
        self.language = query.get("language", "en")
        self.request_id = uuid.uuid4().hex

    async def error(self, message: str) -> None:
        await self.fake._send(
            self.ws,
            {
                "type": "error",
                "status_code": 400,
                "title": "Invalid request",
                "message": message,
                "error_code": "invalid_request",
                "request_id": self.request_id,
            },
        )

    async def interim(self, text: str) -> None:
        await self._transcript(text, final=False)

    async def end_of_speech(self) -> None:
        await self.finalize()

    async def finalize(self) -> None:
        if self.start is None:
            return
        await self._transcript(self.fake.take_text(), final=True)
        self.start = None

    async def _transcript(self, text: str, *, final: bool) -> None:
        await self.fake._send(
            self.ws,
            {
                "type": "transcript",
                "request_id": self.request_id,
                "text": text,
                "is_final": final,
                "duration": round(self.t - (self.start or 0.0), 3),
                "language": self.language,
            },
        )
