"""Mistral's Voxtral speech APIs on 127.0.0.1, as the ``mistralai`` SDK's models describe them.

**Speech** (:class:`FakeMistralSpeechServer`, ``POST /v1/audio/speech``). The key in
``Authorization: Bearer <key>`` (a wrong one: 401 ``{"message", "request_id"}``); a JSON body
with ``input`` (a non-empty string), and optionally ``model``, ``voice_id``, ``stream``
(boolean) and ``response_format`` (``pcm`` or ``wav`` here: the fake encodes no compressed
audio); a bad one gets 422 ``{"detail": [{"loc", "msg", "type"}]}``. With ``stream: true`` the
answer is ``text/event-stream``: ``event: speech.audio.delta`` events whose data is ``{"type":
"speech.audio.delta", "audio_data": <base64>}``, then ``event: speech.audio.done`` with
``{"type": "speech.audio.done", "usage": {...}}``. Without it, ``{"audio_data": <base64>}``
holds the whole audio. ``pcm`` is 32-bit float little-endian samples, mono at 24 kHz (``wav``,
not streamed here: 16-bit PCM in a WAV file). The fake speaks ``secs_per_word`` of tone per
word, in chunks of ``chunk_secs``.

**Realtime transcription** (:class:`FakeMistralRealtimeServer`, the socket
``/v1/audio/transcriptions/realtime?model=...``). The same header (a wrong key: HTTP 401); a
handshake without ``model``, or with one not named ``voxtral-mini-transcribe-realtime...``, gets
400. The fake opens with ``{"type": "session.created",
"session": {...}}`` (16-bit PCM at 16 kHz until told otherwise). The client may send
``{"type": "session.update", "session": {...}}`` (``audio_format`` ``{"encoding", "sample_rate"}``
with ``pcm_s16le`` or ``pcm_mulaw``, ``target_streaming_delay_ms``, ``language``; fixed once
audio came), answered with ``session.updated``; then ``{"type": "input_audio.append", "audio":
<base64>}`` messages, ``{"type": "input_audio.flush"}`` and ``{"type": "input_audio.end"}``. The
fake "hears" speech by its energy, with time counted in received audio: every ``interim_secs``
of an utterance it sends the new words as ``{"type": "transcription.text.delta", "text"}`` (the
first one of a session without a language preceded by ``{"type": "transcription.language",
"audio_language"}``); a flush ends the utterance with its last words and ``{"type":
"transcription.done", "model", "text", "usage", "language"}``, the text being the next of
``transcripts``; ``input_audio.end`` sends a ``transcription.done`` (empty text when nothing was
heard) and closes. Problems get ``{"type": "error", "error": {"message", "code"}}`` and the
socket stays open.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.audio.wav import pcm_to_wav
from callpipe.testing.fakes._server import (
    CountsStreams,
    LocalWebsocketServer,
    Refusal,
    ServedWebsocketFake,
    json_object,
    sse,
)
from callpipe.testing.fakes._stt import Hearing
from callpipe.testing.fakes._tts import SpeechHTTPFake
from callpipe.testing.fakes.openai import tone_pcm

SPEECH_PATH = "/v1/audio/speech"
SPEECH_RATE = 24000
SPEECH_FORMATS = ("pcm", "wav")
"""The ``response_format`` values the fake makes (Mistral's also include mp3, flac, opus)."""
REALTIME_PATH = "/v1/audio/transcriptions/realtime"
REALTIME_MODEL_PREFIX = "voxtral-mini-transcribe-realtime"
REALTIME_ENCODINGS = ("pcm_s16le", "pcm_mulaw")
"""The audio encodings the fake decodes (Mistral's also include 32-bit and float PCM, A-law)."""
REALTIME_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
SESSION_FIELDS = (
    "audio_format",
    "target_streaming_delay_ms",
    "diarize",
    "context_bias",
    "language",
    "speaker_references",
    "turn_detection",
)
MAX_AUDIO_BYTES = 262144
"""The largest decoded ``input_audio.append`` Mistral takes."""


def pcm16_to_float32(pcm: bytes) -> bytes:
    """16-bit PCM as 32-bit float little-endian samples (Mistral's ``pcm``)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype("<f4") / 32768.0
    data: bytes = samples.astype("<f4").tobytes()
    return data


def speech_problem(body: Any) -> list[dict[str, Any]]:
    """The validation errors of a speech request body (empty: it is valid)."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "a JSON object is required", "type": "model_type"}]
    problems: list[dict[str, Any]] = []

    def refuse(name: str, msg: str) -> None:
        problems.append({"loc": ["body", name], "msg": msg, "type": "value_error"})

    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        refuse("input", "a non-empty string is required")
    for name in ("model", "voice_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            refuse(name, "a string")
    if not isinstance(body.get("stream", False), bool):
        refuse("stream", "a boolean")
    if body.get("response_format", "mp3") not in SPEECH_FORMATS:
        refuse("response_format", f"this fake makes {' and '.join(SPEECH_FORMATS)}")
    return problems


class FakeMistralSpeechServer(CountsStreams, SpeechHTTPFake):
    """Mistral's ``POST /v1/audio/speech`` (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.05,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(SPEECH_PATH, self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.completed_streams = 0
        self.cancelled_streams = 0

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"message": "Unauthorized", "request_id": uuid.uuid4().hex}, 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        problems = speech_problem(body)
        if problems:
            return JSONResponse({"detail": problems}, 422)
        self.requests.append(body)
        status = self._next_status()
        if status != 200:
            message = {"message": f"scripted error {status}", "request_id": uuid.uuid4().hex}
            return JSONResponse(message, status)
        text = str(body["input"])
        pcm = tone_pcm(len(text.split()) * self.secs_per_word, SPEECH_RATE)
        wav = body.get("response_format") == "wav"
        if not body.get("stream"):
            audio = pcm_to_wav(pcm, SPEECH_RATE) if wav else pcm16_to_float32(pcm)
            return JSONResponse({"audio_data": base64.b64encode(audio).decode()})
        if wav:
            problem = {"loc": ["body", "response_format"], "msg": "the fake streams pcm only"}
            return JSONResponse({"detail": [{**problem, "type": "value_error"}]}, 422)
        return StreamingResponse(
            self._counted(self._events(text, pcm)), media_type="text/event-stream"
        )

    async def _events(self, text: str, pcm: bytes) -> AsyncGenerator[str, None]:
        step = max(2, int(self.chunk_secs * SPEECH_RATE) * 2)
        for i in range(0, len(pcm), step):
            audio = pcm16_to_float32(pcm[i : i + step])
            data = {"type": "speech.audio.delta", "audio_data": base64.b64encode(audio).decode()}
            yield sse(data)
            await asyncio.sleep(self.chunk_delay)
        usage = {"prompt_tokens": len(text.split()), "completion_tokens": 0, "total_tokens": 0}
        yield sse({"type": "speech.audio.done", "usage": usage})


class FakeMistralRealtimeServer(ServedWebsocketFake):
    """Mistral's realtime transcription socket (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        energy_threshold: float = 300.0,
        interim_secs: float = 0.2,
        secs_per_word: float = 0.2,
    ) -> None:
        self.energy_threshold = energy_threshold
        self.interim_secs = interim_secs
        self.secs_per_word = secs_per_word
        self.transcripts: deque[str] = deque()
        """Scripted transcripts, one per utterance ("hello" when empty)."""
        self.detected_language = "en"
        """The ``transcription.language`` sent when the session names no language."""
        self.headers: list[dict[str, str]] = []
        """Each handshake's headers (names in lower case)."""
        self.queries: list[dict[str, str]] = []
        self.messages: list[dict[str, Any]] = []
        """Every client message (audio ones included)."""
        self.sent: list[dict[str, Any]] = []
        """Every message sent, in order (all connections)."""
        self.audio = bytearray()
        """The audio received, decoded to 16-bit PCM."""
        self.error_next: tuple[int, str] | None = None
        """Answer the next client message with this ``(code, message)`` error."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Bearer ")],
            path=REALTIME_PATH,
            validate=_validate_realtime,
            unauthorized=Refusal(401, json.dumps({"message": "Unauthorized"})),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes

    @property
    def connections(self) -> int:
        return len(self.queries)

    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await ws.send(json.dumps(message))

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = {k: v[-1] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        self.queries.append(query)
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        with contextlib.suppress(ConnectionClosed):
            await _Transcribing(self, ws, query["model"]).run()


def _validate_realtime(request: Any) -> Refusal | None:
    model = parse_qs(urlsplit(request.path).query).get("model", [""])[-1]
    if not model:
        return Refusal(400, json.dumps({"message": "the model query parameter is required"}))
    if not model.startswith(REALTIME_MODEL_PREFIX):
        return Refusal(400, json.dumps({"message": f"model {model!r} is not a realtime model"}))
    return None


class _Transcribing(Hearing):
    """One realtime session: its settings, the utterance being heard and its text so far."""

    def __init__(self, fake: FakeMistralRealtimeServer, ws: ServerConnection, model: str):
        super().__init__(rate=16000, threshold=fake.energy_threshold)
        self.fake = fake
        self.ws = ws
        self.session: dict[str, Any] = {
            "request_id": uuid.uuid4().hex,
            "model": model,
            "audio_format": {"encoding": "pcm_s16le", "sample_rate": 16000},
            "target_streaming_delay_ms": None,
            "language": None,
        }
        self.got_audio = False
        self.said = ""
        """The words of the open utterance sent as deltas so far."""
        self.language_sent = False
        self.audio_secs = 0.0

    async def error(self, code: int, text: str) -> None:
        await self.fake._send(self.ws, {"type": "error", "error": {"message": text, "code": code}})

    def update_problem(self, update: Any) -> str | None:
        if not isinstance(update, dict) or not update:
            return "session must be a non-empty object"
        unknown = set(update) - set(SESSION_FIELDS)
        if unknown:
            return f"unknown session fields {sorted(unknown)}"
        if self.got_audio:
            return "the session's settings are fixed once audio has been received"
        fmt = update.get("audio_format")
        if fmt is not None:
            if not isinstance(fmt, dict) or fmt.get("encoding") not in REALTIME_ENCODINGS:
                return f"this fake decodes {' and '.join(REALTIME_ENCODINGS)}"
            if fmt.get("sample_rate") not in REALTIME_RATES:
                return f"sample_rate must be one of {REALTIME_RATES}"
        delay = update.get("target_streaming_delay_ms")
        if delay is not None and not isinstance(delay, int):
            return "target_streaming_delay_ms must be an integer"
        language = update.get("language")
        if language is not None and not isinstance(language, str):
            return "language must be a string"
        return None

    async def run(self) -> None:
        await self.fake._send(self.ws, {"type": "session.created", "session": self.session})
        async for raw in self.ws:
            message = json_object(raw)
            if message is None:
                await self.error(400, "messages must be JSON objects")
                continue
            self.fake.messages.append(message)
            if self.fake.error_next is not None:
                (code, text), self.fake.error_next = self.fake.error_next, None
                await self.error(code, text)
                continue
            kind = message.get("type")
            if kind == "session.update":
                update = message.get("session")
                problem = self.update_problem(update)
                if problem is not None:
                    await self.error(400, problem)
                    continue
                assert isinstance(update, dict)
                self.session.update(update)
                fmt = self.session["audio_format"]
                self.rate, self.ulaw = fmt["sample_rate"], fmt["encoding"] == "pcm_mulaw"
                await self.fake._send(self.ws, {"type": "session.updated", "session": self.session})
            elif kind == "input_audio.append":
                await self.append(message.get("audio"))
            elif kind == "input_audio.flush":
                if self.start is not None:
                    await self.done()
            elif kind == "input_audio.end":
                await self.done()
                await self.ws.close()
                return
            else:
                await self.error(400, f"unknown message type {kind!r}")

    async def append(self, audio: Any) -> None:
        try:
            data = base64.b64decode(audio, validate=True) if isinstance(audio, str) else None
        except ValueError:
            data = None
        if data is None or len(data) > MAX_AUDIO_BYTES:
            await self.error(400, "audio must be base64 of at most 262144 bytes")
            return
        self.got_audio = True
        self.audio_secs += len(self.samples(data)) / self.rate
        self.fake.audio += ulaw_to_pcm(data) if self.ulaw else data
        if not await self.hear(data) or not self.interim_due(self.fake.interim_secs):
            return
        if not self.language_sent and self.session.get("language") is None:
            self.language_sent = True
            language = {
                "type": "transcription.language",
                "audio_language": self.fake.detected_language,
            }
            await self.fake._send(self.ws, language)
        await self.delta(self.first_words(self.next_text(), self.fake.secs_per_word))

    def next_text(self) -> str:
        return self.fake.transcripts[0] if self.fake.transcripts else "hello"

    async def delta(self, words: str) -> None:
        """Send the part of ``words`` (the utterance so far) not sent yet."""
        if len(words) > len(self.said) and words.startswith(self.said):
            text = words[len(self.said) :]
            self.said = words
            await self.fake._send(self.ws, {"type": "transcription.text.delta", "text": text})

    async def done(self) -> None:
        """End the utterance heard (if any): its last words, then ``transcription.done``."""
        text = ""
        if self.start is not None:
            text = self.fake.transcripts.popleft() if self.fake.transcripts else "hello"
            await self.delta(text)
        self.start, self.said = None, ""
        language = self.session.get("language") or (self.fake.detected_language if text else None)
        usage = {
            "prompt_tokens": 0,
            "completion_tokens": len(text.split()),
            "total_tokens": len(text.split()),
            "prompt_audio_seconds": round(self.audio_secs),
        }
        done = {
            "type": "transcription.done",
            "model": self.session["model"],
            "text": text,
            "usage": usage,
            "language": language,
        }
        await self.fake._send(self.ws, done)
