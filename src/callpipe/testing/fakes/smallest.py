"""FakeSmallestServer: Smallest AI's two speech sockets on one 127.0.0.1 port, as Smallest's
Waves API serves them on one host: Pulse speech-to-text (``/waves/v1/stt/live``) and Lightning
text-to-speech (``/waves/v1/tts/live``).

The documented contract (Smallest's Waves API reference and the models of the ``smallestai``
SDK):

- **Key.** ``Authorization: Bearer <key>`` on the handshake; a wrong one gets 401 (the SDK
  reads 401 as invalid credentials).
- **STT handshake.** The session's options are the query: ``model`` (required: ``pulse`` or
  ``pulse-2``; any other value, e.g. ``pulse-pro``, is refused with 400 before the upgrade),
  ``language``, ``encoding`` (``linear16`` by default; the fake decodes ``linear16`` and
  ``mulaw``), ``sample_rate`` (8000, 16000, 22050, 24000, 44100, 48000), booleans as
  ``true``/``false``.
- **STT session.** The client streams binary audio and may send ``{"type": "finalize"}`` (the
  utterance so far becomes final, ``from_finalize: true``; the socket stays open) and
  ``{"type": "close_stream"}`` (the last final, with ``is_last: true``, then the server
  closes). Results are ``{"type": "transcription", "transcript", "transcription", "is_final",
  "is_last", "language", "session_id", ...}`` (both text fields carry the same words, as the
  SDK's model says). With ``endpointing`` (on unless ``endpointing=false``) quiet of
  ``silence_secs`` after speech ends the utterance too. An unknown control gets ``{"type":
  "error", "message"}``.
- **TTS socket.** The client sends requests ``{"voice_id", "text", "model", "language",
  "sample_rate", "continue", "flush", ...}``. Text sent with ``continue: true`` waits for more
  (at most ``max_buffer_flush_ms``, else ``buffer_secs``), then is spoken; a request without
  it, or with ``flush: true``, speaks what is held and ends the generation. Speech is
  ``{"status": "chunk", "data": {"audio": <base64>}}`` about once per word and, when asked
  (``word_timestamps: true``), ``{"status": "word_timestamp", "data": {"id", "word", "start",
  "end"}}`` with times from the start of each spoken piece (each has its own ``request_id``);
  the generation's end is ``{"status": "complete"}``. Problems are ``{"status": "error",
  "message"}`` (the socket stays open).

The STT side "hears" by energy with time counted in audio received (deterministic); the TTS side
speaks a tone of ``secs_per_word`` per word. Everything received is recorded.
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

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.testing.fakes._server import (
    DropsMidAudio,
    LocalWebsocketServer,
    Refusal,
    ServedWebsocketFake,
    json_object,
)
from callpipe.testing.fakes._stt import Hearing
from callpipe.testing.fakes.openai import tone_pcm

STT_PATH = "/waves/v1/stt/live"
TTS_PATH = "/waves/v1/tts/live"
STT_MODELS = ("pulse", "pulse-2")
STT_ENCODINGS = ("linear16", "mulaw")
STT_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
TTS_RATES = (8000, 16000, 24000, 44100)
TTS_FORMATS = ("pcm", "ulaw")


def stt_query_problem(query: dict[str, str]) -> str | None:
    """Why Smallest would refuse this STT query before the upgrade (None: accepted)."""
    if query.get("model") not in STT_MODELS:
        return f"model must be one of {', '.join(STT_MODELS)}"
    if query.get("encoding", "linear16") not in STT_ENCODINGS:
        return f"encoding must be one of {', '.join(STT_ENCODINGS)}"
    try:
        rate = int(query.get("sample_rate", "16000"))
    except ValueError:
        return "sample_rate must be an integer"
    if rate not in STT_RATES:
        return f"sample_rate must be one of {', '.join(map(str, STT_RATES))}"
    for name, value in query.items():
        if name.endswith(("_timestamps", "_detection")) and value not in ("true", "false"):
            return f"{name} must be true or false"
    return None


def tts_request_problem(request: dict[str, Any]) -> str | None:
    """Why Smallest would refuse this TTS request (None: accepted)."""
    if not isinstance(request.get("voice_id"), str) or not request["voice_id"]:
        return "voice_id is required"
    if not isinstance(request.get("text"), str):
        return "text is required"
    rate = request.get("sample_rate", 24000)
    if rate not in TTS_RATES:
        return f"sample_rate must be one of {', '.join(map(str, TTS_RATES))}"
    if request.get("output_format", "pcm") not in TTS_FORMATS:
        return f"output_format must be one of {', '.join(TTS_FORMATS)}"
    speed = request.get("speed")
    if speed is not None and not (isinstance(speed, int | float) and 0.5 <= speed <= 2.0):
        return "speed must be between 0.5 and 2.0"
    return None


def _validate(request: Any) -> Refusal | None:
    split = urlsplit(request.path)
    if split.path == TTS_PATH:
        return None
    if split.path != STT_PATH:
        return Refusal(404, "Not Found\n")
    query = {k: v[-1] for k, v in parse_qs(split.query).items()}
    problem = stt_query_problem(query)
    return Refusal(400, json.dumps({"message": problem})) if problem else None


class _Session(Hearing):
    """One STT connection: the utterance being heard and its results."""

    def __init__(self, fake: FakeSmallestServer, ws: ServerConnection, query: dict[str, str]):
        super().__init__(
            rate=int(query.get("sample_rate", "16000")),
            threshold=fake.energy_threshold,
            ulaw=query.get("encoding") == "mulaw",
        )
        self.fake = fake
        self.ws = ws
        self.query = query
        self.session_id = uuid.uuid4().hex
        endpointing = query.get("endpointing", "true") == "true"
        self.silence_secs = fake.silence_secs if endpointing else None

    async def result(
        self, text: str, *, final: bool, last: bool = False, finalize: bool = False
    ) -> None:
        message: dict[str, Any] = {
            "type": "transcription",
            "transcript": text,
            "transcription": text,
            "is_final": final,
            "is_last": last,
            "session_id": self.session_id,
            "language": self.query.get("language", "en"),
        }
        if final:
            message["from_finalize"] = finalize
        await self.fake._send_stt(self.ws, message)

    async def end_utterance(self, *, last: bool = False, finalize: bool = False) -> None:
        if self.start is None:
            if last:
                await self.result("", final=True, last=True)
            return
        self.start = None
        await self.result(self.fake.take_text(), final=True, last=last, finalize=finalize)

    async def audio(self, data: bytes) -> None:
        self.fake.audio.extend(data)
        if await self.hear(data):
            if self.interim_due(self.fake.interim_secs):
                words = self.first_words(self.fake.next_text(), self.fake.secs_per_word)
                await self.result(words, final=False)
        elif self.quiet_for(self.silence_secs):
            await self.end_utterance()


class FakeSmallestServer(DropsMidAudio, ServedWebsocketFake):
    """Smallest's STT and TTS sockets (see the module docstring).
    ``async with FakeSmallestServer() as server: server.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        energy_threshold: float = 300.0,
        interim_secs: float = 0.25,
        secs_per_word: float = 0.3,
        silence_secs: float = 0.6,
        tts_secs_per_word: float = 0.1,
        chunk_delay: float = 0.0,
        buffer_secs: float = 0.05,
    ) -> None:
        self.energy_threshold = energy_threshold
        self.interim_secs = interim_secs
        self.secs_per_word = secs_per_word
        self.silence_secs = silence_secs
        self.tts_secs_per_word = tts_secs_per_word
        self.chunk_delay = chunk_delay
        self.buffer_secs = buffer_secs
        """How long text sent with ``continue`` waits for more before it is spoken (unless the
        request gives ``max_buffer_flush_ms``)."""
        self.transcripts: deque[str] = deque()
        """Scripted STT transcripts, one per utterance (``"hello"`` when empty)."""
        self.stt_queries: list[dict[str, str]] = []
        self.stt_sent: list[dict[str, Any]] = []
        self.controls: list[dict[str, Any]] = []
        """The STT side's text messages (``finalize``, ``close_stream``)."""
        self.audio = bytearray()
        """STT audio received, as sent (µ-law stays µ-law)."""
        self.audio_at_finalize: list[int] = []
        self.tts_requests: list[dict[str, Any]] = []
        self.tts_sent: list[dict[str, Any]] = []
        self.spoken: list[str] = []
        """The text of each TTS generation (up to its end)."""
        self.headers: list[dict[str, str]] = []
        self.stt_connections = 0
        self.tts_connections = 0
        self.stt_error_next: str | None = None
        """Answer the next STT audio with this error message (the socket stays open)."""
        self.drop_after_chunks: int | None = None
        """Abort the TTS socket (no close frame) once this many audio chunks went out, once."""
        self._chunks_sent = 0
        self.tts_error_next: str | None = None
        """Answer the next TTS request with this error message."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Bearer ")],
            validate=_validate,
            unauthorized=Refusal(401, json.dumps({"message": "Unauthorized"})),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes

    def next_text(self) -> str:
        return self.transcripts[0] if self.transcripts else "hello"

    def take_text(self) -> str:
        return self.transcripts.popleft() if self.transcripts else "hello"

    async def _send_stt(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        self.stt_sent.append(message)
        await ws.send(json.dumps(message))

    async def _send_tts(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        self.tts_sent.append(message)
        await ws.send(json.dumps(message))

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        split = urlsplit(ws.request.path)
        try:
            if split.path == STT_PATH:
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                await self._stt(ws, query)
            else:
                await self._tts(ws)
        except ConnectionClosed:
            pass

    # ------------------------------------------------------------------ speech to text

    async def _stt(self, ws: ServerConnection, query: dict[str, str]) -> None:
        self.stt_connections += 1
        self.stt_queries.append(query)
        session = _Session(self, ws, query)
        async for raw in ws:
            if isinstance(raw, bytes):
                if self.stt_error_next is not None:
                    error = {"type": "error", "message": self.stt_error_next}
                    self.stt_error_next = None
                    await self._send_stt(ws, error)
                await session.audio(raw)
                continue
            message = json_object(raw) or {}
            self.controls.append(message)
            kind = message.get("type")
            if kind == "finalize":
                self.audio_at_finalize.append(len(self.audio))
                await session.end_utterance(finalize=True)
            elif kind == "close_stream":
                await session.end_utterance(last=True)
                await ws.close()
                return
            else:
                error = {"type": "error", "message": f"unknown message type {kind!r}"}
                await self._send_stt(ws, error)

    # ------------------------------------------------------------------ text to speech

    async def _tts(self, ws: ServerConnection) -> None:
        self.tts_connections += 1
        generations: asyncio.Queue[tuple[str, dict[str, Any], bool]] = asyncio.Queue()
        speaker = asyncio.get_running_loop().create_task(self._speak(ws, generations))
        held: list[str] = []
        timer: asyncio.TimerHandle | None = None

        def release(request: dict[str, Any], end: bool) -> None:
            text = "".join(held)
            held.clear()
            if text or end:
                generations.put_nowait((text, request, end))

        try:
            async for raw in ws:
                request = json_object(raw) if isinstance(raw, str) else None
                if request is None:
                    await self._send_tts(ws, {"status": "error", "message": "expected JSON"})
                    continue
                self.tts_requests.append(request)
                problem = tts_request_problem(request)
                if problem is None and self.tts_error_next is not None:
                    problem, self.tts_error_next = self.tts_error_next, None
                if problem is not None:
                    await self._send_tts(ws, {"status": "error", "message": problem})
                    continue
                held.append(request["text"])
                if timer is not None:
                    timer.cancel()
                    timer = None
                if request.get("continue") is not True or request.get("flush") is True:
                    release(request, True)
                else:  # held until more comes, at most the buffer delay
                    delay = request.get("max_buffer_flush_ms")
                    secs = delay / 1000 if isinstance(delay, int) else self.buffer_secs
                    loop = asyncio.get_running_loop()
                    timer = loop.call_later(secs, release, request, False)
        finally:
            if timer is not None:
                timer.cancel()
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await speaker

    async def _speak(
        self,
        ws: ServerConnection,
        generations: asyncio.Queue[tuple[str, dict[str, Any], bool]],
    ) -> None:
        while True:
            text, request, end = await generations.get()
            if text:
                self.spoken.append(text)
            rate = int(request.get("sample_rate", 24000))
            ulaw = request.get("output_format") == "ulaw"
            request_id = uuid.uuid4().hex
            at = 0.0
            for index, word in enumerate(text.split()):
                if self._drop_due(ws):
                    return
                self._chunks_sent += 1
                pcm = tone_pcm(self.tts_secs_per_word, rate)
                audio = pcm_to_ulaw(pcm) if ulaw else pcm
                chunk = {
                    "status": "chunk",
                    "request_id": request_id,
                    "data": {"audio": base64.b64encode(audio).decode()},
                }
                await self._send_tts(ws, chunk)
                if request.get("word_timestamps") is True:
                    timing = {"id": index, "word": word, "start": at}
                    timing["end"] = at + self.tts_secs_per_word
                    stamp = {"status": "word_timestamp", "request_id": request_id, "data": timing}
                    await self._send_tts(ws, stamp)
                at += self.tts_secs_per_word
                await asyncio.sleep(self.chunk_delay)
            if end:
                await self._send_tts(ws, {"status": "complete", "request_id": request_id})
