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
import uuid
from collections import deque
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
    LocalASGIServer,
    LocalWebsocketServer,
    Refusal,
    ServedHTTPFake,
    ServedWebsocketFake,
    fake_app,
)
from callpipe.testing.fakes._stt import Listener, ListeningFake, ListeningOptions
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


class FakeElevenLabsServer(DropsMidAudio, ServedWebsocketFake):
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
                    if self._drop_due(ws):
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


# ---------------------------------------------------------------------- speech-to-text
#
# ElevenLabs Scribe realtime (``/v1/speech-to-text/realtime``), separate from the TTS fake above.
# The documented contract (https://elevenlabs.io/docs/api-reference/speech-to-text/v-1-speech-to-text-realtime
# and the ``elevenlabs`` SDK's ``realtime`` client and ``ReceiveTranscription`` models):
#
# - **Handshake.** The key in ``xi-api-key``; the query carries ``model_id`` (required),
#   ``audio_format`` (``pcm_<rate>`` or ``ulaw_8000``), ``commit_strategy`` (``manual`` or
#   ``vad``), ``language_code``, ``include_timestamps``, ``include_language_detection``, repeated
#   ``keyterms`` (at most 50, each at most 20 characters), ``no_verbatim``,
#   ``filter_background_audio``, ``enable_logging`` and, for ``vad``, ``vad_silence_threshold_secs``
#   (0.3 to 3), ``vad_threshold`` (0.1 to 0.9), ``min_speech_duration_ms`` and
#   ``min_silence_duration_ms`` (50 to 2000). A bad query is refused with HTTP 400.
# - **Client messages.** ``{"message_type": "input_audio_chunk", "audio_base_64", "commit",
#   "sample_rate", "previous_text"?}``; ``commit: true`` ends the segment.
# - **Server messages.** ``session_started`` (``session_id``, ``config``) on connect;
#   ``partial_transcript`` (``text``); on a commit ``committed_transcript`` (``text``), followed,
#   with timestamps or language detection asked for, by ``committed_transcript_with_timestamps``
#   (``text``, ``language_code``, ``words``); errors ``{"message_type": "input_error" | "error"
#   | ..., "error"}``.
#
# The fake "hears" speech by energy, like the Cartesia and Deepgram fakes: loud audio opens a
# segment, a partial transcript follows every ``interim_secs`` of speech (the first words of the
# next scripted transcript), and a commit — or, with ``commit_strategy=vad``,
# ``vad_silence_threshold_secs`` (default 1.5) of quiet after speech — yields the committed
# transcript (``transcripts``; ``"hello"`` when empty; an empty text for a commit of no speech).
# Time is counted in received audio, so results are deterministic.

STT_PATH = "/v1/speech-to-text/realtime"
STT_FORMATS = re.compile(r"^(pcm_(8000|16000|22050|24000|44100|48000)|ulaw_8000)$")
_STT_RANGES = {
    "vad_silence_threshold_secs": (0.3, 3.0),
    "vad_threshold": (0.1, 0.9),
    "min_speech_duration_ms": (50, 2000),
    "min_silence_duration_ms": (50, 2000),
}


def _stt_refusal(message: str) -> Refusal:
    return Refusal(400, json.dumps({"detail": {"status": "invalid_request", "message": message}}))


def _validate_stt(request: Any) -> Refusal | None:
    query = parse_qs(urlsplit(request.path).query)
    if not query.get("model_id"):
        return _stt_refusal("model_id is required")
    fmt = query.get("audio_format", ["pcm_16000"])[-1]
    if not STT_FORMATS.match(fmt):
        return _stt_refusal(f"unsupported audio_format: {fmt}")
    if query.get("commit_strategy", ["manual"])[-1] not in ("manual", "vad"):
        return _stt_refusal("commit_strategy must be manual or vad")
    for name, (low, high) in _STT_RANGES.items():
        if name in query:
            try:
                value = float(query[name][-1])
            except ValueError:
                return _stt_refusal(f"{name} must be a number")
            if not low <= value <= high:
                return _stt_refusal(f"{name} must be between {low} and {high}")
    keyterms = query.get("keyterms", [])
    if len(keyterms) > 50 or any(len(term) > 20 for term in keyterms):
        return _stt_refusal("at most 50 keyterms of at most 20 characters each")
    for name in ("include_timestamps", "include_language_detection", "no_verbatim"):
        if query.get(name, ["false"])[-1] not in ("true", "false"):
            return _stt_refusal(f"{name} must be true or false")
    return None


class FakeElevenLabsSTTServer(ListeningFake):
    """ElevenLabs Scribe realtime on 127.0.0.1 (see the comment above this class)."""

    def __init__(self, **options: Unpack[ListeningOptions]) -> None:
        super().__init__(
            auth=[("header", "xi-api-key", "")],
            path=STT_PATH,
            validate=_validate_stt,
            unauthorized=_refusal(401, "invalid_api_key", "Invalid API key"),
            **options,
        )
        self.received: list[dict[str, Any]] = []
        """Every client message, parsed (audio left base64-encoded)."""
        self.audio_at_commit: list[int] = []

    @property
    def commits(self) -> int:
        return len(self.audio_at_commit)

    async def _handle(self, ws: ServerConnection) -> None:
        query = self._connected(ws)
        session = _ScribeSession(self, ws, {k: v[-1] for k, v in query.items()})
        await self._send(ws, session.started())
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    await session.error("input_error", "messages must be JSON")
                    continue
                self.received.append(message)
                if self.error_next is not None:
                    error, self.error_next = self.error_next, None
                    await session.error("input_error", error)
                    continue
                problem = _chunk_problem(message)
                if problem is not None:
                    await session.error("input_error", problem)
                    continue
                audio = base64.b64decode(message["audio_base_64"])
                if audio:
                    self.audio += audio
                    await session.audio(audio)
                if message["commit"]:
                    self.audio_at_commit.append(len(self.audio))
                    await session.commit()


def _chunk_problem(message: Any) -> str | None:
    """Why a client message is not a valid ``input_audio_chunk`` (None: it is)."""
    if not isinstance(message, dict) or message.get("message_type") != "input_audio_chunk":
        return "unknown message_type"
    if not isinstance(message.get("audio_base_64"), str):
        return "audio_base_64 is required"
    if not isinstance(message.get("commit"), bool):
        return "commit is required"
    if not isinstance(message.get("sample_rate"), int):
        return "sample_rate is required"
    return None


class _ScribeSession(Listener):
    """One realtime connection: the segment being heard, transcripts sent."""

    def __init__(self, fake: FakeElevenLabsSTTServer, ws: ServerConnection, query: dict[str, str]):
        fmt = query.get("audio_format", "pcm_16000")
        vad = query.get("commit_strategy", "manual") == "vad"
        super().__init__(
            fake,
            rate=int(fmt.rsplit("_", 1)[1]),
            ulaw=fmt == "ulaw_8000",
            silence_secs=float(query.get("vad_silence_threshold_secs", "1.5")) if vad else None,
        )
        self.ws = ws
        self.query = query
        self.detailed = any(
            query.get(name) == "true"
            for name in ("include_timestamps", "include_language_detection")
        )

    def started(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "sample_rate": self.rate,
            "commit_strategy": self.query.get("commit_strategy", "manual"),
            "model_id": self.query.get("model_id"),
            "include_timestamps": self.query.get("include_timestamps") == "true",
        }
        if "language_code" in self.query:
            config["language_code"] = self.query["language_code"]
        return {"message_type": "session_started", "session_id": uuid.uuid4().hex, "config": config}

    async def error(self, kind: str, message: str) -> None:
        await self.fake._send(self.ws, {"message_type": kind, "error": message})

    async def interim(self, text: str) -> None:
        await self.fake._send(self.ws, {"message_type": "partial_transcript", "text": text})

    async def end_of_speech(self) -> None:
        await self.commit()

    async def commit(self) -> None:
        start = self.start
        text = self.fake.take_text() if start is not None else ""
        self.start = None
        await self.fake._send(self.ws, {"message_type": "committed_transcript", "text": text})
        if not self.detailed:
            return
        tokens = text.split()
        begin = start or self.t
        step = (self.t - begin) / max(1, len(tokens))
        words = [
            {
                "text": token,
                "start": round(begin + i * step, 3),
                "end": round(begin + (i + 1) * step, 3),
                "type": "word",
                "logprob": -0.05,
            }
            for i, token in enumerate(tokens)
        ]
        await self.fake._send(
            self.ws,
            {
                "message_type": "committed_transcript_with_timestamps",
                "text": text,
                "language_code": self.query.get("language_code", "en"),
                "words": words,
            },
        )


# ---------------------------------------------------------------------- HTTP speech-to-text
#
# ``POST /v1/speech-to-text`` (https://elevenlabs.io/docs/api-reference/speech-to-text/convert
# and the SDK's ``speech_to_text.convert``): the key in ``xi-api-key``; a multipart form with
# ``model_id`` (required), ``file``, ``language_code``, ``tag_audio_events``, repeated
# ``keyterms``, ``no_verbatim`` ...; the answer is the SDK's ``SpeechToTextChunkResponseModel``:
# ``{"language_code", "language_probability", "text", "words": [{"text", "start", "end",
# "type", "logprob"}], "transcription_id", "audio_duration_secs"}``. Errors come as
# ``{"detail": {"status", "message"}}``.
#
# The same fake serves the HTTP text-to-speech streams (the ``stream`` and
# ``stream-with-timestamps`` pages of https://elevenlabs.io/docs/api-reference/text-to-speech,
# the SDK's ``text_to_speech.stream`` and ``stream_with_timestamps``):
# ``POST /v1/text-to-speech/{voice_id}/stream`` and ``.../stream/with-timestamps``, the key in
# ``xi-api-key``; the query carries ``output_format`` (``mp3_44100_128`` by default),
# ``optimize_streaming_latency`` (0 to 4) and ``enable_logging``; the JSON body ``text``
# (required), ``model_id``, ``language_code``, ``voice_settings``,
# ``pronunciation_dictionary_locators`` (at most 3), ``seed``, ``previous_text``, ``next_text``,
# ``apply_text_normalization`` (``auto``, ``on``, ``off``) .... ``/stream`` answers with the
# audio bytes as they are made; ``/stream/with-timestamps`` with one JSON object per line,
# ``{"audio_base64", "alignment", "normalized_alignment"}``, each alignment ``{"characters",
# "character_start_times_seconds", "character_end_times_seconds"}`` counted from the start of
# the request's audio. The fake speaks ``secs_per_char`` of tone per character in chunks of
# ``speech_chunk_secs`` (PCM, u-law or A-law: it makes no MP3 or Opus, a 400 says so), refuses
# ``previous_text`` / ``next_text`` for the Eleven v3 models, and counts the answers a client
# abandoned.

SPEECH_PATH = re.compile(
    r"^/v1/text-to-speech/(?P<voice>[^/]+)/stream(?P<timed>/with-timestamps)?$"
)
HTTP_FORMATS = re.compile(r"^(pcm_(8000|16000|22050|24000|32000|44100|48000)|ulaw_8000|alaw_8000)$")
NO_CONTEXT_MODELS = frozenset({"eleven_v3", "eleven_v3_conversational"})


def parse_form(content_type: str, body: bytes) -> dict[str, list[Any]]:
    """A multipart/form-data body's fields, every value kept (files as bytes)."""
    import email.parser
    import email.policy

    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, list[Any]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        value: Any = data if part.get_filename() else data.decode("utf-8", "replace")
        fields.setdefault(name, []).append(value)
    return fields


class FakeElevenLabsHTTPServer(CountsStreams, ServedHTTPFake):
    """ElevenLabs' HTTP API on 127.0.0.1: speech-to-text, and the text-to-speech streams (see the
    comment above this class)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_char: float = 0.01,
        speech_chunk_secs: float = 0.1,
        speech_chunk_delay: float = 0.0,
    ) -> None:
        from starlette.routing import Route

        self.api_key = api_key
        self.transcripts: deque[str] = deque()
        """Scripted answers (``"hello"`` when empty)."""
        self.statuses: deque[int] = deque()
        """HTTP statuses for the next requests (200 = answer)."""
        self.requests: list[dict[str, list[Any]]] = []
        """Each authorized request's form fields."""
        self.answers: list[dict[str, Any]] = []
        self.secs_per_char = secs_per_char
        self.speech_chunk_secs = speech_chunk_secs
        self.speech_chunk_delay = speech_chunk_delay
        self.speech_requests: list[dict[str, Any]] = []
        """Each authorized text-to-speech request: ``{"path", "voice_id", "query", "body"}``."""
        self.speech_statuses: deque[int] = deque()
        """HTTP statuses for the next valid text-to-speech requests (200 = speak)."""
        self.speech_refused = 0
        """Text-to-speech requests refused for their key (401)."""
        self.completed_streams = 0
        self.cancelled_streams = 0
        """Speech answers the client stopped reading before their end (a barge-in)."""
        self._server = LocalASGIServer(
            fake_app(
                [
                    Route("/v1/speech-to-text", self._convert, methods=["POST"]),
                    Route("/v1/text-to-speech/{voice_id}/stream", self._speech, methods=["POST"]),
                    Route(
                        "/v1/text-to-speech/{voice_id}/stream/with-timestamps",
                        self._speech,
                        methods=["POST"],
                    ),
                ]
            )
        )

    async def _convert(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        def error(status: int, code: str, message: str) -> Any:
            return JSONResponse({"detail": {"status": code, "message": message}}, status)

        if self.api_key is not None and request.headers.get("xi-api-key") != self.api_key:
            return error(401, "invalid_api_key", "Invalid API key")
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return error(400, "invalid_request", "expected multipart/form-data")
        fields = parse_form(content_type, await request.body())
        self.requests.append(fields)
        status = self.statuses.popleft() if self.statuses else 200
        if status != 200:
            return error(status, "scripted_error", "scripted transcription error")
        if not fields.get("model_id") or not fields.get("file"):
            return error(400, "invalid_request", "model_id and file are required")
        text = self.transcripts.popleft() if self.transcripts else "hello"
        tokens = text.split()
        words = [
            {"text": token, "start": 0.3 * i, "end": 0.3 * i + 0.25, "type": "word", "logprob": 0.0}
            for i, token in enumerate(tokens)
        ]
        answer = {
            "language_code": fields.get("language_code", ["en"])[-1],
            "language_probability": 0.98,
            "text": text,
            "words": words,
            "transcription_id": uuid.uuid4().hex,
            "audio_duration_secs": round(0.3 * len(tokens), 3),
        }
        self.answers.append(answer)
        return JSONResponse(answer)

    async def _speech(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        def error(status: int, code: str, message: str) -> Any:
            return JSONResponse({"detail": {"status": code, "message": message}}, status)

        if self.api_key is not None and request.headers.get("xi-api-key") != self.api_key:
            self.speech_refused += 1
            return error(401, "invalid_api_key", "Invalid API key")
        match = SPEECH_PATH.match(request.url.path)
        assert match is not None  # the routes are the path's two forms
        query = dict(request.query_params)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "invalid_request", "the body must be JSON")
        self.speech_requests.append(
            {"path": request.url.path, "voice_id": match["voice"], "query": query, "body": body}
        )
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            missing = {"type": "missing", "loc": ["body", "text"], "msg": "Field required"}
            return JSONResponse({"detail": [missing]}, 422)
        problem = _speech_problem(query, body)
        if problem is not None:
            return error(400, "invalid_parameters", problem)
        status = self.speech_statuses.popleft() if self.speech_statuses else 200
        if status != 200:
            return error(status, "scripted_error", "scripted speech error")
        fmt = query.get("output_format", "mp3_44100_128")
        rate = int(fmt.split("_")[1])
        text = str(body["text"])
        per_chunk = max(1, int(self.speech_chunk_secs / self.secs_per_char))
        timed = bool(match["timed"])

        async def chunks() -> AsyncGenerator[bytes, None]:
            for i in range(0, len(text), per_chunk):
                piece = text[i : i + per_chunk]
                audio = _encode(tone_pcm(len(piece) * self.secs_per_char, rate), fmt)
                if not timed:
                    yield audio
                else:
                    starts = [(i + n) * self.secs_per_char for n in range(len(piece))]
                    alignment = {
                        "characters": list(piece),
                        "character_start_times_seconds": [round(t, 3) for t in starts],
                        "character_end_times_seconds": [
                            round(t + self.secs_per_char, 3) for t in starts
                        ],
                    }
                    line = {
                        "audio_base64": base64.b64encode(audio).decode(),
                        "alignment": alignment,
                        "normalized_alignment": alignment,
                    }
                    yield (json.dumps(line) + "\n").encode()
                await asyncio.sleep(self.speech_chunk_delay)

        media = "application/json" if timed else "application/octet-stream"
        return StreamingResponse(self._counted(chunks()), media_type=media)


def _speech_problem(query: dict[str, str], body: dict[str, Any]) -> str | None:
    """Why a text-to-speech request is invalid (None: it is valid)."""
    fmt = query.get("output_format", "mp3_44100_128")
    if not HTTP_FORMATS.match(fmt):
        return f"output_format {fmt}: this fake produces PCM, u-law and A-law only"
    latency = query.get("optimize_streaming_latency")
    if latency is not None and latency not in ("0", "1", "2", "3", "4"):
        return "optimize_streaming_latency must be between 0 and 4"
    if query.get("enable_logging", "true") not in ("true", "false"):
        return "enable_logging must be true or false"
    settings = body.get("voice_settings")
    if settings is not None and not isinstance(settings, dict):
        return "voice_settings must be an object"
    normalization = body.get("apply_text_normalization")
    if normalization is not None and normalization not in ("auto", "on", "off"):
        return "apply_text_normalization must be auto, on or off"
    locators = body.get("pronunciation_dictionary_locators")
    if locators is not None and (not isinstance(locators, list) or len(locators) > 3):
        return "at most 3 pronunciation_dictionary_locators"
    if body.get("model_id") in NO_CONTEXT_MODELS and (
        body.get("previous_text") is not None or body.get("next_text") is not None
    ):
        return f"{body['model_id']} does not support previous_text or next_text"
    return None
