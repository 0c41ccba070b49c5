"""FakeTogetherServer: Together AI's real-time transcription and text-to-speech sockets.

Both endpoints on one port, under ``/v1`` as Together serves them (a client's base URL is
``fake.url + "/v1"``). The key goes in ``Authorization: Bearer <key>`` (the speech socket also
takes ``?api_key=``); a wrong one gets HTTP 401 with Together's error object
(``{"error": {"message", "type", "code": "invalid_api_key"}}``).

**Transcription** (``/v1/realtime``). Query: ``model`` (required), ``input_audio_format``
(required, ``pcm_s16le_16000``, the one format documented) and ``turn_detection`` (``none``
or ``server_vad``, the default); anything else in it is refused with HTTP 400. The session
opens with ``session.created``. The client sends ``{"type": "input_audio_buffer.append",
"audio": <base64>}`` (16-bit PCM at 16 kHz), ``{"type": "input_audio_buffer.commit"}`` and
``{"type": "transcription_session.updated", "session": {"turn_detection": ...}}`` (answered
in kind). The fake "hears" by energy with time counted in received audio: loud audio opens an
utterance, and every ``interim_secs`` of speech a
``conversation.item.input_audio_transcription.delta`` carries the first words of its
transcript (the next of ``transcripts``, "hello" when empty). A commit is answered with
``input_audio_buffer.committed`` and ``...transcription.completed`` (``transcript``: the
utterance's text, empty when nothing was heard since the last commit); with server VAD,
``silence_secs`` of quiet after speech does the same. ``fail_next`` answers the next commit
with ``...transcription.failed``; ``error_next`` answers the next message with an ``error``
event whose code is ``error_code`` (the socket stays open).

**Speech** (``/v1/audio/speech/websocket``). Query: ``model`` and ``voice`` (required),
``language``, ``max_partial_length``, ``response_format`` (``pcm``, the one the fake encodes),
``speed``. The session opens with ``session.created`` (``realtime.tts.session``). The client
sends ``input_text_buffer.append`` (acknowledged with ``conversation.item.input_text.received``),
``input_text_buffer.commit``, ``input_text_buffer.clear`` and ``tts_session.updated``
(``{"session": {"voice", ...}}``, answered with ``session.updated``). The buffered text becomes
an item (``tts_1``, ``tts_2``, ...) when it ends a sentence (``.``, ``!``, ``?``), passes
``max_partial_length`` characters, or is committed; each item is spoken in turn as
``conversation.item.audio_output.delta`` messages (base64 16-bit PCM at 24 kHz, a tone of
``secs_per_word`` per word) and ends with ``conversation.item.audio_output.done``. A clear drops
the buffer and the items not started yet. ``fail_next`` answers the next item with
``conversation.item.tts.failed``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import (
    LocalWebsocketServer,
    Refusal,
    ServedWebsocketFake,
    json_object,
)
from callpipe.testing.fakes._stt import Hearing
from callpipe.testing.fakes._tts import speech_chunks

STT_PATH = "/v1/realtime"
TTS_PATH = "/v1/audio/speech/websocket"
INPUT_AUDIO_FORMATS = ("pcm_s16le_16000",)
TURN_DETECTION = ("none", "server_vad")
STT_QUERY = frozenset({"model", "input_audio_format", "turn_detection"})
TTS_QUERY = frozenset(
    {"model", "voice", "language", "max_partial_length", "response_format", "speed", "api_key"}
)
TTS_RATE = 24000
"""Together's speech socket streams 24 kHz 16-bit mono PCM."""
SENTENCE_ENDS = (".", "!", "?")


def _error(message: str, code: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"message": message, "type": kind, "param": None, "code": code}


def _refusal(status: int, message: str, code: str) -> Refusal:
    return Refusal(status, json.dumps({"error": _error(message, code)}))


def stt_query_problem(query: dict[str, list[str]]) -> str | None:
    """Why a transcription handshake's query would be refused (None: accepted)."""
    unknown = set(query) - STT_QUERY
    if unknown:
        return f"unknown query parameters: {sorted(unknown)}"
    if not query.get("model", [""])[-1]:
        return "model is required"
    audio_format = query.get("input_audio_format", [""])[-1]
    if audio_format not in INPUT_AUDIO_FORMATS:
        return f"unsupported input_audio_format {audio_format!r}"
    if query.get("turn_detection", ["server_vad"])[-1] not in TURN_DETECTION:
        return "turn_detection must be none or server_vad"
    return None


def tts_query_problem(query: dict[str, list[str]]) -> str | None:
    """Why a speech handshake's query would be refused (None: accepted)."""
    unknown = set(query) - TTS_QUERY
    if unknown:
        return f"unknown query parameters: {sorted(unknown)}"
    for name in ("model", "voice"):
        if not query.get(name, [""])[-1]:
            return f"{name} is required"
    if query.get("response_format", ["pcm"])[-1] != "pcm":
        return "the fake streams response_format=pcm only"
    length = query.get("max_partial_length", ["1"])[-1]
    if not length.isdigit() or int(length) < 1:
        return "max_partial_length must be a positive integer"
    return None


def _validate(request: Any) -> Refusal | None:
    split = urlsplit(request.path)
    query = parse_qs(split.query)
    if split.path == STT_PATH:
        problem = stt_query_problem(query)
    elif split.path == TTS_PATH:
        problem = tts_query_problem(query)
    else:
        return Refusal(404, "Not Found\n")
    return _refusal(400, problem, "invalid_request") if problem else None


class FakeTogetherServer(ServedWebsocketFake):
    """See the module docstring. ``async with FakeTogetherServer() as fake: fake.base_url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        energy_threshold: float = 300.0,
        silence_secs: float = 0.5,
        interim_secs: float = 0.2,
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        self.energy_threshold = energy_threshold
        self.silence_secs = silence_secs
        self.interim_secs = interim_secs
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        """Seconds between two audio deltas of an item (generation time)."""
        self.transcripts: deque[str] = deque()
        """Scripted transcripts, one per utterance ("hello" when empty)."""
        self.stt_queries: list[dict[str, list[str]]] = []
        self.tts_queries: list[dict[str, list[str]]] = []
        self.headers: list[dict[str, str]] = []
        """Each accepted handshake's headers (names in lower case)."""
        self.stt_messages: list[dict[str, Any]] = []
        """Every transcription client message (appends included)."""
        self.tts_messages: list[dict[str, Any]] = []
        """Every speech client message."""
        self.sent: list[dict[str, Any]] = []
        """Every message sent, in order (both endpoints)."""
        self.audio = bytearray()
        """The transcription audio received (16 kHz PCM)."""
        self.items: list[tuple[str, str]] = []
        """Each speech item's (voice, text), in the order spoken."""
        self.error_next: str | None = None
        """Answer the next client message (either endpoint) with an ``error`` event."""
        self.error_code = "server_error"
        """The ``code`` of that event."""
        self.fail_next: str | None = None
        """Fail the next commit (transcription) or item (speech) with this message."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Bearer "), ("query", "api_key", "")],
            validate=_validate,
            unauthorized=_refusal(401, "Invalid API key provided", "invalid_api_key"),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes

    @property
    def base_url(self) -> str:
        """The ``base_url`` a client takes (``.../v1``)."""
        return self.url + "/v1"

    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await ws.send(json.dumps(message))

    async def _error(self, ws: ServerConnection, text: str, code: str = "server_error") -> None:
        event = {"event_id": uuid.uuid4().hex, "type": "error", "error": _error(text, code)}
        await self._send(ws, event)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        split = urlsplit(ws.request.path)
        query = parse_qs(split.query)
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        with contextlib.suppress(ConnectionClosed):
            if split.path == STT_PATH:
                self.stt_queries.append(query)
                await _Listening(self, ws, query).run()
            else:
                self.tts_queries.append(query)
                await _Speaking(self, ws, query).run()


class _Listening(Hearing):
    """One transcription session."""

    def __init__(
        self, fake: FakeTogetherServer, ws: ServerConnection, query: dict[str, list[str]]
    ) -> None:
        super().__init__(rate=16000, threshold=fake.energy_threshold)
        self.fake = fake
        self.ws = ws
        self.model = query["model"][-1]
        self.server_vad = query.get("turn_detection", ["server_vad"])[-1] == "server_vad"
        self.items = 0

    async def send(self, message: dict[str, Any]) -> None:
        message = {"event_id": uuid.uuid4().hex, **message}
        await self.fake._send(self.ws, message)

    def next_words(self) -> str:
        text = self.fake.transcripts[0] if self.fake.transcripts else "hello"
        return self.first_words(text, self.fake.secs_per_word)

    async def complete(self) -> None:
        """The audio since the last commit becomes an item with its transcript."""
        self.items += 1
        item_id = f"item_{self.items}"
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id})
        if self.fake.fail_next is not None:
            said, self.fake.fail_next = self.fake.fail_next, None
            error = _error(said, "transcription_failed", "server_error")
            failed = "conversation.item.input_audio_transcription.failed"
            await self.send({"type": failed, "item_id": item_id, "error": error})
            return
        text = ""
        if self.start is not None:
            text = self.fake.transcripts.popleft() if self.fake.transcripts else "hello"
            self.start = None
        completed = "conversation.item.input_audio_transcription.completed"
        await self.send({"type": completed, "item_id": item_id, "transcript": text})

    async def run(self) -> None:
        session = {
            "id": f"sess_{uuid.uuid4().hex[:12]}",
            "object": "realtime.session",
            "modalities": ["audio"],
            "model": self.model,
        }
        await self.send({"type": "session.created", "session": session})
        async for raw in self.ws:
            message = json_object(raw)
            if message is None:
                await self.fake._error(self.ws, "messages must be JSON objects", "invalid_json")
                continue
            self.fake.stt_messages.append(message)
            if self.fake.error_next is not None:
                said, self.fake.error_next = self.fake.error_next, None
                await self.fake._error(self.ws, said, self.fake.error_code)
                continue
            kind = message.get("type")
            if kind == "input_audio_buffer.append":
                await self.append(message.get("audio"))
            elif kind == "input_audio_buffer.commit":
                await self.complete()
            elif kind == "transcription_session.updated":
                update = message.get("session")
                if not isinstance(update, dict):
                    await self.fake._error(self.ws, "session must be an object", "invalid_value")
                    continue
                self.server_vad = update.get("turn_detection") is not None
                await self.send({"type": "transcription_session.updated", "session": update})
            else:
                await self.fake._error(
                    self.ws, f"unknown event type {kind!r}", "invalid_event_type"
                )

    async def append(self, audio: Any) -> None:
        try:
            pcm = base64.b64decode(audio, validate=True) if isinstance(audio, str) else None
        except ValueError:
            pcm = None
        if pcm is None:
            await self.fake._error(self.ws, "audio must be base64", "invalid_value")
            return
        self.fake.audio += pcm
        if await self.hear(pcm):
            if self.interim_due(self.fake.interim_secs):
                delta = "conversation.item.input_audio_transcription.delta"
                await self.send({"type": delta, "delta": self.next_words()})
        elif self.server_vad and self.quiet_for(self.fake.silence_secs):
            await self.complete()


class _Speaking:
    """One speech session: its text buffer and the items waiting to be spoken."""

    def __init__(
        self, fake: FakeTogetherServer, ws: ServerConnection, query: dict[str, list[str]]
    ) -> None:
        self.fake = fake
        self.ws = ws
        self.model = query["model"][-1]
        self.voice = query["voice"][-1]
        partial = query.get("max_partial_length")
        self.max_partial = int(partial[-1]) if partial else None
        self.buffer = ""
        self.count = 0
        self.items: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()

    async def run(self) -> None:
        session = {
            "id": f"tts_sess_{uuid.uuid4().hex[:12]}",
            "object": "realtime.tts.session",
            "modalities": ["text", "audio"],
            "model": self.model,
            "voice": self.voice,
        }
        await self.fake._send(
            self.ws, {"event_id": uuid.uuid4().hex, "type": "session.created", "session": session}
        )
        speaker = asyncio.get_running_loop().create_task(self._speak_items())
        try:
            async for raw in self.ws:
                await self.receive(raw)
        finally:
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await speaker

    def _make_item(self) -> None:
        text, self.buffer = self.buffer, ""
        if text.strip():
            self.count += 1
            self.items.put_nowait((f"tts_{self.count}", self.voice, text))

    async def receive(self, raw: str | bytes) -> None:
        message = json_object(raw)
        if message is None:
            await self.fake._error(self.ws, "messages must be JSON objects", "invalid_json")
            return
        self.fake.tts_messages.append(message)
        if self.fake.error_next is not None:
            said, self.fake.error_next = self.fake.error_next, None
            await self.fake._error(self.ws, said, self.fake.error_code)
            return
        kind = message.get("type")
        if kind == "input_text_buffer.append":
            text = message.get("text")
            if not isinstance(text, str):
                await self.fake._error(self.ws, "text must be a string", "invalid_value")
                return
            received = {"type": "conversation.item.input_text.received", "text": text}
            await self.fake._send(self.ws, received)
            self.buffer += text
            complete = self.buffer.rstrip().endswith(SENTENCE_ENDS)
            if complete or (self.max_partial and len(self.buffer) >= self.max_partial):
                self._make_item()
        elif kind == "input_text_buffer.commit":
            self._make_item()
        elif kind == "input_text_buffer.clear":
            self.buffer = ""
            while not self.items.empty():
                self.items.get_nowait()
        elif kind == "tts_session.updated":
            session = message.get("session")
            voice = session.get("voice") if isinstance(session, dict) else None
            if voice is not None and (not isinstance(voice, str) or not voice):
                await self.fake._error(self.ws, "voice must be a string", "invalid_value")
                return
            if isinstance(voice, str):
                self.voice = voice
            updated = {"type": "session.updated", "session": dict(session or {})}
            await self.fake._send(self.ws, updated)
        else:
            await self.fake._error(self.ws, f"unknown event type {kind!r}", "invalid_event_type")

    async def _speak_items(self) -> None:
        while True:
            item_id, voice, text = await self.items.get()
            if self.fake.fail_next is not None:
                said, self.fake.fail_next = self.fake.fail_next, None
                error = _error(said, "tts_failed", "server_error")
                failed = {"type": "conversation.item.tts.failed", "item_id": item_id}
                await self.fake._send(self.ws, failed | {"error": error})
                continue
            self.fake.items.append((voice, text))
            secs = len(text.split()) * self.fake.secs_per_word
            for pcm in speech_chunks(secs, TTS_RATE, self.fake.chunk_secs):
                delta = {
                    "type": "conversation.item.audio_output.delta",
                    "item_id": item_id,
                    "delta": base64.b64encode(pcm).decode("ascii"),
                }
                await self.fake._send(self.ws, delta)
                await asyncio.sleep(self.fake.chunk_delay)
            done = {"type": "conversation.item.audio_output.done", "item_id": item_id}
            await self.fake._send(self.ws, done)
