"""FakeSarvamServer: Sarvam AI's streaming speech-to-text and text-to-speech sockets on 127.0.0.1.

Both endpoints on one port, as the SDK (``sarvamai``) reaches them from one origin:

**Speech to text** (``/speech-to-text/ws``). The key in the ``Api-Subscription-Key`` header (a
wrong one: HTTP 403); the options are query parameters: ``language-code`` (required;
``unknown`` detects), ``model`` (``saaras:v3``, ``saaras:v4``), ``mode``, ``sample_rate`` (8000
or 16000, default 16000), ``input_audio_codec``, ``keyterms`` (a JSON list of strings), the VAD
knobs, ``vad_signals``, ``high_vad_sensitivity`` and ``flush_signal`` (``true``/``false``).
A bad option is refused with HTTP 400. The client sends ``{"audio": {"data": <base64 16-bit
PCM>, "sample_rate", "encoding"}}`` and, with ``flush_signal=true``, ``{"type": "flush"}``.
The fake "hears" by energy with time counted in received audio: loud audio opens an utterance
(``{"type": "events", "data": {"signal_type": "START_SPEECH", ...}}`` with ``vad_signals``);
``silence_secs`` of quiet after it, or a flush, ends it with ``END_SPEECH`` (``vad_signals``)
and ``{"type": "data", "data": {"request_id", "transcript", "language_code", "metrics", ...}}``,
the transcript being the next of ``transcripts`` ("hello" when empty). A flush with nothing
heard gets a ``data`` message with an empty transcript. A malformed message gets
``{"type": "error", "data": {"error", "code"}}`` and the socket stays open.

**Text to speech** (``/text-to-speech/ws``). The same header; query ``model`` and
``send_completion_event``. The first message must be ``{"type": "config", "data": {...}}`` with
``language_code`` (or the older ``target_language_code``) and ``speaker``; ``output_audio_codec``
``linear16`` or ``mulaw`` (the fake does not encode the compressed ones) at
``speech_sample_rate`` (8000, 16000, 22050 or 24000; default 22050). Then ``{"type": "text",
"data": {"text"}}`` (1 to 2500 characters) collects text; a run of synthesis starts once
``min_buffer_size`` characters (default 50) are waiting, and on ``{"type": "flush"}``. Each run
sends ``{"type": "audio", "data": {"audio": <base64>, "content_type", "request_id"}}`` chunks,
a tone of ``secs_per_word`` per word; a flush's run ends with ``{"type": "event", "data":
{"event_type": "final"}}`` (with ``send_completion_event=true``). A new config message first
speaks what is waiting, then applies. ``{"type": "ping"}`` is accepted. Problems get
``{"type": "error", "data": {"message", "code"}}``; the socket stays open.

**REST text to speech** (:class:`FakeSarvamHTTPServer`, ``POST /text-to-speech``, a server of
its own). The same header (a wrong key: 403); a JSON body with ``text`` (1 to 2500 characters),
``language_code`` (or ``target_language_code``), and optionally ``speaker``, ``model``,
``speech_sample_rate``, ``output_audio_codec`` (``wav`` or ``linear16`` here) and the voice
settings; a bad one gets 400 ``{"error": {"message", "code", "request_id"}}``. The answer is
``{"request_id", "audios": [<base64 16-bit mono WAV>]}``, a tone of ``secs_per_word`` per word;
``raw_answers`` scripts 200 bodies sent as they are (an answer without audio).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.audio.wav import pcm_to_wav
from callpipe.testing.fakes._server import (
    LocalWebsocketServer,
    Refusal,
    ServedWebsocketFake,
    json_object,
)
from callpipe.testing.fakes._stt import Hearing
from callpipe.testing.fakes._tts import SpeechHTTPFake, speech_chunks
from callpipe.testing.fakes.openai import tone_pcm

STT_PATH = "/speech-to-text/ws"
TTS_PATH = "/text-to-speech/ws"
STT_MODELS = ("saaras:v3", "saaras:v4")
STT_MODES = ("transcribe", "translate", "verbatim", "translit", "codemix")
STT_RATES = ("8000", "16000")
STT_CODECS = ("wav", "pcm_s16le", "pcm_l16", "pcm_raw")
STT_LANGUAGES = (
    "unknown en-IN hi-IN bn-IN gu-IN kn-IN ml-IN mr-IN od-IN pa-IN ta-IN te-IN as-IN ur-IN "
    "ne-IN kok-IN ks-IN sd-IN sa-IN sat-IN mni-IN brx-IN mai-IN doi-IN"
).split()
FLAGS = ("vad_signals", "high_vad_sensitivity", "flush_signal")
NUMBERS = (
    "positive_speech_threshold",
    "negative_speech_threshold",
    "min_speech_frames",
    "first_turn_min_speech_frames",
    "negative_frames_count",
    "negative_frames_window",
    "start_speech_volume_threshold",
    "interrupt_min_speech_frames",
    "pre_speech_pad_frames",
    "num_initial_ignored_frames",
)
TTS_MODELS = ("bulbul:v2", "bulbul:v3-beta", "bulbul:v3", "bulbul:v4-flash")
TTS_LANGUAGES = "bn-IN en-IN gu-IN hi-IN kn-IN ml-IN mr-IN od-IN pa-IN ta-IN te-IN".split()
TTS_RATES = (8000, 16000, 22050, 24000)
TTS_CODECS = ("linear16", "mulaw")
MAX_TEXT = 2500


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def stt_query_problem(query: dict[str, str]) -> str | None:
    """Why a speech-to-text handshake's query would be refused (None: accepted)."""
    language = query.get("language-code")
    if language is None:
        return "language-code is required"
    if language not in STT_LANGUAGES:
        return f"unsupported language-code {language!r}"
    checks = (
        ("model", STT_MODELS),
        ("mode", STT_MODES),
        ("sample_rate", STT_RATES),
        ("input_audio_codec", STT_CODECS),
    )
    for name, allowed in checks:
        if name in query and query[name] not in allowed:
            return f"{name} must be one of {', '.join(allowed)}"
    for name in FLAGS:
        if name in query and query[name] not in ("true", "false"):
            return f"{name} must be true or false"
    for name in NUMBERS:
        if name in query and not _number(query[name]):
            return f"{name} must be a number"
    if "keyterms" in query:
        try:
            terms = json.loads(query["keyterms"])
        except ValueError:
            terms = None
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            return "keyterms must be a JSON array of strings"
    return None


def _validate(request: Any) -> Refusal | None:
    split = urlsplit(request.path)
    query = {k: v[-1] for k, v in parse_qs(split.query).items()}
    if split.path == STT_PATH:
        problem = stt_query_problem(query)
    elif split.path == TTS_PATH:
        model = query.get("model", "bulbul:v3")
        problem = None if model in TTS_MODELS else f"unsupported model {model!r}"
    else:
        return Refusal(404, "Not Found\n")
    return Refusal(400, json.dumps({"error": {"message": problem}})) if problem else None


class FakeSarvamServer(ServedWebsocketFake):
    """See the module docstring. ``async with FakeSarvamServer() as fake: fake.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        energy_threshold: float = 300.0,
        silence_secs: float = 0.5,
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
        flush_delay: float = 0.0,
        wav_chunks: bool = False,
    ) -> None:
        self.energy_threshold = energy_threshold
        self.silence_secs = silence_secs
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.flush_delay = flush_delay
        """Seconds a flush's transcript takes (Sarvam's processing time)."""
        self.wav_chunks = wav_chunks
        """Send each text-to-speech audio chunk as a WAV file whose header is longer than 44
        bytes (a ``LIST`` chunk; ``fmt`` and ``fact`` as G.711 files have them for mulaw)."""
        self.transcripts: deque[str] = deque()
        """Scripted transcripts, one per utterance ("hello" when empty)."""
        self.stt_queries: list[dict[str, str]] = []
        self.tts_queries: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        """Each handshake's headers (names in lower case)."""
        self.stt_messages: list[dict[str, Any]] = []
        """Every speech-to-text client message (audio messages included)."""
        self.tts_messages: list[dict[str, Any]] = []
        """Every text-to-speech client message."""
        self.sent: list[dict[str, Any]] = []
        """Every message sent, in order (both endpoints)."""
        self.audio = bytearray()
        """The speech-to-text audio received (decoded PCM)."""
        self.runs: list[str] = []
        """The text of each synthesis run."""
        self.error_next: str | None = None
        """Answer the next client message (either endpoint) with this error."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Api-Subscription-Key", "")],
            validate=_validate,
            unauthorized=Refusal(403, json.dumps({"error": {"message": "Invalid API key"}})),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes

    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await ws.send(json.dumps(message))

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        split = urlsplit(ws.request.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        with contextlib.suppress(ConnectionClosed):
            if split.path == STT_PATH:
                self.stt_queries.append(query)
                await _Listening(self, ws, query).run()
            else:
                self.tts_queries.append(query)
                await _Speaking(self, ws, query).run()


class _Listening(Hearing):
    """One speech-to-text connection."""

    def __init__(self, fake: FakeSarvamServer, ws: ServerConnection, query: dict[str, str]):
        super().__init__(
            rate=int(query.get("sample_rate", "16000")), threshold=fake.energy_threshold
        )
        self.fake = fake
        self.ws = ws
        self.query = query
        self.vad_signals = query.get("vad_signals") == "true"
        self.flush_signal = query.get("flush_signal") == "true"
        self.heard = 0.0

    async def error(self, text: str, code: str = "invalid_request") -> None:
        await self.fake._send(self.ws, {"type": "error", "data": {"error": text, "code": code}})

    async def speech_started(self) -> None:
        if self.vad_signals:
            await self.signal("START_SPEECH")

    async def signal(self, kind: str) -> None:
        data = {"signal_type": kind, "occured_at": time.time()}
        await self.fake._send(self.ws, {"type": "events", "data": data})

    async def finish(self) -> None:
        """End the utterance (if any) with its transcript."""
        text = ""
        if self.start is not None:
            text = self.fake.transcripts.popleft() if self.fake.transcripts else "hello"
            if self.vad_signals:
                await self.signal("END_SPEECH")
        language = self.query.get("language-code", "unknown")
        detected = language == "unknown"
        data = {
            "request_id": uuid.uuid4().hex,
            "transcript": text,
            "timestamps": None,
            "diarized_transcript": None,
            "language_code": "en-IN" if detected else language,
            "language_probability": 0.9 if detected else None,
            "metrics": {
                "audio_duration": round(self.t - self.heard, 3),
                "processing_latency": 0.01,
            },
        }
        self.heard = self.t
        self.start = None
        await self.fake._send(self.ws, {"type": "data", "data": data})

    async def run(self) -> None:
        async for raw in self.ws:
            message = json_object(raw)
            if message is None:
                await self.error("messages must be JSON objects")
                continue
            self.fake.stt_messages.append(message)
            if self.fake.error_next is not None:
                text, self.fake.error_next = self.fake.error_next, None
                await self.error(text, "server_error")
                continue
            if message.get("type") == "flush":
                if not self.flush_signal:
                    await self.error("flush needs flush_signal=true")
                else:
                    await asyncio.sleep(self.fake.flush_delay)
                    await self.finish()
                continue
            audio = message.get("audio")
            if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
                await self.error("expected an audio message or a flush")
                continue
            if not isinstance(audio.get("sample_rate"), int):
                await self.error("audio.sample_rate must be an integer")
                continue
            try:
                pcm = base64.b64decode(audio["data"], validate=True)
            except ValueError:
                await self.error("audio.data must be base64")
                continue
            self.fake.audio += pcm
            await self.hear(pcm)
            if self.quiet_for(self.fake.silence_secs):
                await self.finish()


class _Speaking:
    """One text-to-speech connection: its config, text buffer and synthesis runs."""

    def __init__(self, fake: FakeSarvamServer, ws: ServerConnection, query: dict[str, str]):
        self.fake = fake
        self.ws = ws
        self.completion = query.get("send_completion_event") == "true"
        self.config: dict[str, Any] | None = None
        self.buffer = ""
        self.runs: asyncio.Queue[tuple[str, dict[str, Any], bool] | None] = asyncio.Queue()

    async def error(self, text: str, code: int = 400) -> None:
        await self.fake._send(self.ws, {"type": "error", "data": {"message": text, "code": code}})

    def config_problem(self, data: Any) -> str | None:
        if not isinstance(data, dict):
            return "config.data must be an object"
        language = data.get("language_code", data.get("target_language_code"))
        if language not in TTS_LANGUAGES:
            return f"unsupported language_code {language!r}"
        if not isinstance(data.get("speaker"), str) or not data["speaker"]:
            return "speaker is required"
        if data.get("speech_sample_rate", 22050) not in TTS_RATES:
            return f"speech_sample_rate must be one of {TTS_RATES}"
        if data.get("output_audio_codec", "linear16") not in TTS_CODECS:
            return f"the fake serves output_audio_codec {', '.join(TTS_CODECS)}"
        if data.get("model", "bulbul:v3") not in TTS_MODELS:
            return f"unsupported model {data.get('model')!r}"
        return None

    def queue_run(self, final: bool) -> None:
        assert self.config is not None
        text, self.buffer = self.buffer, ""
        if text.strip() or final:
            self.runs.put_nowait((text, dict(self.config), final))

    async def run(self) -> None:
        synth = asyncio.get_running_loop().create_task(self._synthesize())
        try:
            async for raw in self.ws:
                await self.receive(raw)
        finally:
            synth.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await synth

    async def receive(self, raw: str | bytes) -> None:
        message = json_object(raw)
        if message is None:
            await self.error("messages must be JSON objects")
            return
        self.fake.tts_messages.append(message)
        if self.fake.error_next is not None:
            said, self.fake.error_next = self.fake.error_next, None
            await self.error(said, 500)
            return
        kind = message.get("type")
        if kind == "config":
            problem = self.config_problem(message.get("data"))
            if problem is not None:
                await self.error(problem)
                return
            if self.config is not None:
                self.queue_run(final=False)  # what waits is spoken with the old config
            self.config = dict(message["data"])
        elif kind == "ping":
            return
        elif self.config is None:
            await self.error("the first message must be the config")
        elif kind == "text":
            data = message.get("data")
            text = data.get("text") if isinstance(data, dict) else None
            if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
                await self.error(f"text must be 1 to {MAX_TEXT} characters")
                return
            self.buffer += text
            if len(self.buffer) >= int(self.config.get("min_buffer_size") or 50):
                self.queue_run(final=False)
        elif kind == "flush":
            self.queue_run(final=True)
        else:
            await self.error(f"unknown message type {kind!r}")

    async def _synthesize(self) -> None:
        while (item := await self.runs.get()) is not None:
            text, config, final = item
            if text.strip():
                await self._speak(text, config)
            if final and self.completion:
                data = {"event_type": "final", "message": "synthesis complete"}
                await self.fake._send(self.ws, {"type": "event", "data": data})

    async def _speak(self, text: str, config: dict[str, Any]) -> None:
        self.fake.runs.append(text)
        rate = int(config.get("speech_sample_rate", 22050))
        codec = str(config.get("output_audio_codec", "linear16"))
        secs = len(text.split()) * self.fake.secs_per_word
        request_id = uuid.uuid4().hex
        for audio in speech_chunks(secs, rate, self.fake.chunk_secs):
            if codec == "mulaw":
                audio = pcm_to_ulaw(audio)
            if self.fake.wav_chunks:
                audio = wav_file(audio, rate, mulaw=codec == "mulaw")
            data = {
                "audio": base64.b64encode(audio).decode(),
                "content_type": f"audio/{codec}",
                "request_id": request_id,
            }
            await self.fake._send(self.ws, {"type": "audio", "data": data})
            await asyncio.sleep(self.fake.chunk_delay)


def wav_file(samples: bytes, rate: int, *, mulaw: bool) -> bytes:
    """``samples`` (16-bit PCM, or mu-law) as a WAV file with a ``LIST`` chunk before the data."""
    if mulaw:  # WAVE_FORMAT_MULAW: an 18-byte fmt and a fact chunk
        fmt = struct.pack("<HHIIHHH", 7, 1, rate, rate, 1, 8, 0)
        fact = b"fact" + struct.pack("<II", 4, len(samples))
    else:
        fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
        fact = b""
    info = b"INFO" + b"ISFT" + struct.pack("<I", 6) + b"fake\x00\x00"
    chunks = b"".join(
        [
            b"fmt " + struct.pack("<I", len(fmt)) + fmt,
            fact,
            b"LIST" + struct.pack("<I", len(info)) + info,
            b"data" + struct.pack("<I", len(samples)) + samples,
        ]
    )
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


class FakeSarvamHTTPServer(SpeechHTTPFake):
    """Sarvam's ``POST /text-to-speech`` on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, api_key: str | None = "test-key", secs_per_word: float = 0.1) -> None:
        super().__init__(
            "/text-to-speech", self._speak, api_key=api_key, secs_per_word=secs_per_word
        )
        self.raw_answers: deque[bytes] = deque()
        """Bodies for the next valid requests, sent as they are with HTTP 200 (garbage)."""

    @staticmethod
    def _error(status: int, code: str, message: str) -> Any:
        from starlette.responses import JSONResponse

        body = {"error": {"message": message, "code": code, "request_id": uuid.uuid4().hex}}
        return JSONResponse(body, status)

    @staticmethod
    def body_problem(body: Any) -> str | None:
        """Why a request body would be refused (None: accepted)."""
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        text = body.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
            return f"text must be 1 to {MAX_TEXT} characters"
        language = body.get("language_code", body.get("target_language_code"))
        if language not in TTS_LANGUAGES:
            return f"unsupported language_code {language!r}"
        if body.get("model", "bulbul:v3") not in TTS_MODELS:
            return f"unsupported model {body.get('model')!r}"
        if body.get("speech_sample_rate", 22050) not in TTS_RATES:
            return f"speech_sample_rate must be one of {TTS_RATES}"
        if body.get("output_audio_codec", "wav") not in ("wav", "linear16"):
            return "the fake answers WAV (output_audio_codec wav or linear16)"
        return None

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, Response

        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.api_key is not None and request.headers.get("api-subscription-key") != (
            self.api_key
        ):
            return self._error(403, "invalid_api_key_error", "Invalid API key")
        try:
            body = await request.json()
        except ValueError:
            body = None
        problem = self.body_problem(body)
        if problem is not None:
            return self._error(400, "invalid_request_error", problem)
        self.requests.append(body)
        status = self._next_status()
        if status != 200:
            return self._error(status, "server_error", "scripted failure")
        if self.raw_answers:
            return Response(self.raw_answers.popleft(), media_type="application/json")
        rate = int(body.get("speech_sample_rate", 22050))
        pcm = tone_pcm(len(body["text"].split()) * self.secs_per_word, rate)
        audio = base64.b64encode(pcm_to_wav(pcm, rate)).decode()
        return JSONResponse({"request_id": uuid.uuid4().hex, "audios": [audio]})
