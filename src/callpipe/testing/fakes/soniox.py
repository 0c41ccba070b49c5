"""FakeSonioxServer: Soniox's real-time speech-to-text WebSocket (``/transcribe-websocket``).

The handshake is Soniox's: the API key as ``Authorization: Bearer <key>`` (the deprecated
``api_key`` field of the start message is also taken, but not both at once). The first message
must be the JSON configuration (``model``, ``audio_format``, ``sample_rate`` and
``num_channels`` for raw formats, ``enable_endpoint_detection``, ``language_hints``,
``context``, ...). As documented, problems are reported in the session: a result with
``error_code`` (an HTTP status) and ``error_message``, then the socket closes. A wrong key gets
401, a bad or unknown option 400.

Then the client streams binary audio (``pcm_s16le`` or ``mulaw``) and may send
``{"type": "finalize"}``, ``{"type": "keepalive"}`` and an empty message (the end of audio:
the remaining words come as final tokens, then ``finished: true``, and the socket closes).

The fake "hears" by energy, counting time in received audio (not wall-clock time), so tests are
deterministic. Loud audio starts an utterance whose words are the next entry of
``transcripts`` ("hello" when empty), one more word per ``secs_per_word`` of speech. Every
``partial_secs`` of speech a result goes out: the words heard so far as final tokens (those not
sent as final before), except the last, a non-final token. ``finalize`` makes every word final
and adds ``<fin>``; with ``enable_endpoint_detection`` quiet of ``endpoint_secs`` does the same
with ``<end>``. Tokens are words, each but the first with a leading space, as Soniox sends;
``enable_language_identification`` adds ``language``, diarization ``speaker``.

:class:`FakeSonioxTTSServer` is Soniox's real-time text-to-speech WebSocket
(``/tts-websocket``, https://soniox.com/docs/api-reference/tts/websocket-api), its messages
those of the ``soniox`` SDK's ``RealtimeTTS*`` models. One connection hosts up to five streams,
each begun by a configuration message (``stream_id``, ``model``, ``language``, ``voice``,
``audio_format``, ``sample_rate`` for raw formats, optionally ``speed`` 0.7 to 1.3,
``reduce_silence``, ``return_timestamps``, ``bitrate``, ``client_reference_id``); the key is
the handshake's ``Authorization: Bearer <key>`` or the configuration's ``api_key`` (not both).
Then ``{"text", "text_end", "stream_id"}`` messages; ``{"stream_id", "cancel": true}`` stops a
stream; ``{"keep_alive": true}`` only keeps the connection. The server answers
``{"audio", "audio_end", "stream_id"}`` (base64 ``pcm_s16le`` or ``pcm_mulaw`` here; the last
one has ``audio_end: true``), with ``timestamps`` (``characters``,
``character_start_times_seconds``, ``character_end_times_seconds``, seconds from the stream's
start) when asked, then ``{"terminated": true, "stream_id"}``. A failed stream gets
``{"stream_id", "error_code", "error_message"}`` (an HTTP status: 401 a refused key, 400 a bad
message), then ``terminated``; the connection stays open. The fake speaks ``secs_per_word`` of
tone per word as soon as the word is complete (whitespace follows it, or ``text_end``), in
chunks of ``chunk_secs``; a word's characters come with its first chunk, the space before it
too, and the last chunk is held until more text or ``text_end`` shows it is the last.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, Unpack

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import table_pcm_to_ulaw
from callpipe.testing.fakes._server import LocalWebsocketServer, ServedWebsocketFake, json_object
from callpipe.testing.fakes._stt import Hearing, PartialsFake, PartialsOptions
from callpipe.testing.fakes.openai import tone_pcm

PATH = "/transcribe-websocket"
AUDIO_FORMATS = ("pcm_s16le", "mulaw")
"""The raw formats the fake decodes (Soniox takes many more; a phone bot sends these)."""
CONFIG_FIELDS = frozenset(
    {
        "api_key",
        "model",
        "audio_format",
        "num_channels",
        "sample_rate",
        "language_hints",
        "language_hints_strict",
        "context",
        "enable_speaker_diarization",
        "enable_language_identification",
        "enable_endpoint_detection",
        "max_endpoint_delay_ms",
        "endpoint_sensitivity",
        "endpoint_latency_adjustment_level",
        "translation",
        "client_reference_id",
    }
)
CONTEXT_FIELDS = frozenset({"general", "text", "terms", "translation_terms"})
FIN = "<fin>"
END = "<end>"


class FakeSonioxServer(PartialsFake):
    """See the module docstring."""

    def __init__(self, *, endpoint_secs: float = 0.5, **options: Unpack[PartialsOptions]) -> None:
        super().__init__(**options)
        self.endpoint_secs = endpoint_secs
        self.language = "en"
        self.configs: list[dict[str, Any]] = []
        """Each session's start message."""
        self.controls: list[Any] = []
        """Every text message after the start message (``""`` is the end of audio)."""
        self.audio_at_finalize: list[int] = []
        """Bytes of audio received on the connection when each ``finalize`` arrived."""
        self.error_next: tuple[int, str] | None = None
        """Answer the next audio message with this error (code, message), then close."""
        self._server = LocalWebsocketServer(self._handle, api_key=None, auth=[], path=PATH)

    def finals(self) -> list[str]:
        """The texts of the final words sent, marker tokens included."""
        return [t["text"] for m in self.sent for t in m.get("tokens", []) if t["is_final"]]

    async def _handle(self, ws: ServerConnection) -> None:
        self._connected(ws)
        with contextlib.suppress(ConnectionClosed):
            first = await ws.recv()
            session = _Session(self, ws)
            if await session.configure(first):
                await self._feed(ws, session)


class _Session(Hearing):
    """One connection: its configuration, audio clock and utterance."""

    def __init__(self, fake: FakeSonioxServer, ws: ServerConnection) -> None:
        super().__init__(rate=16000, threshold=fake.energy_threshold)
        self.fake = fake
        self.ws = ws
        self.config: dict[str, Any] = {}
        self.received = 0
        self.words: list[str] = []
        self.final_count = 0

    async def send(self, message: dict[str, Any]) -> None:
        message.setdefault("tokens", [])
        message["final_audio_proc_ms"] = int(self.last_voice * 1000)
        message["total_audio_proc_ms"] = int(self.t * 1000)
        self.fake.sent.append(message)
        await self.ws.send(json.dumps(message))

    async def fail(self, code: int, text: str) -> None:
        await self.send({"error_code": code, "error_message": text})
        await self.ws.close()

    def _authorized(self, config: dict[str, Any]) -> str | None:
        """The problem with the credentials (None: accepted)."""
        assert self.ws.request is not None
        header = self.ws.request.headers.get("Authorization")
        in_config = config.get("api_key")
        if header is not None and in_config is not None:
            return "Send the API key either in the Authorization header or in the config, not both."
        if self.fake.api_key is None:
            return None
        if header == f"Bearer {self.fake.api_key}" or in_config == self.fake.api_key:
            return None
        return "Invalid API key."

    async def configure(self, first: str | bytes) -> bool:
        try:
            config = json.loads(first)
        except ValueError:
            config = None
        if not isinstance(config, dict):
            await self.fail(400, "The first message must be the JSON configuration.")
            return False
        self.fake.configs.append(config)
        auth = self._authorized(config)
        if auth is not None:
            await self.fail(401 if auth == "Invalid API key." else 400, auth)
            return False
        problem = _invalid(config)
        if problem is not None:
            await self.fail(400, problem)
            return False
        self.config = config
        self.ulaw = config["audio_format"] == "mulaw"
        self.rate = int(config["sample_rate"])
        return True

    async def control(self, message: str) -> bool:
        self.fake.controls.append(message)
        if message == "":
            await self._finish_words(marker=None)
            await self.send({"finished": True})
            await self.ws.close()
            return False
        control = json_object(message)
        kind = control.get("type") if control is not None else None
        if kind == "finalize":
            self.fake.audio_at_finalize.append(self.received)
            await self._finish_words(marker=FIN)
        elif kind != "keepalive":
            await self.fail(400, f"Invalid control message: {message[:80]}")
            return False
        return True

    async def audio(self, data: bytes) -> bool:
        if self.fake.error_next is not None:
            code, text = self.fake.error_next
            self.fake.error_next = None
            await self.fail(code, text)
            return False
        self.fake.audio += data
        self.received += len(data)
        endpoints = bool(self.config.get("enable_endpoint_detection"))
        if not await self.hear(data) and endpoints and self.quiet_for(self.fake.endpoint_secs):
            await self._finish_words(marker=END)
            return True
        if self.start is not None and self.interim_due(self.fake.partial_secs):
            heard = max(1, min(len(self.words), int(self.speech / self.fake.secs_per_word)))
            new_finals = range(self.final_count, heard - 1)
            tokens = [self._token(i, final=True) for i in new_finals]
            self.final_count = max(self.final_count, heard - 1)
            tokens.append(self._token(heard - 1, final=False))
            await self.send({"tokens": tokens})
        return True

    async def speech_started(self) -> None:
        self.final_count = 0
        self.words = (self.fake.transcripts.popleft() if self.fake.transcripts else "hello").split()

    def _token(self, index: int, *, final: bool) -> dict[str, Any]:
        start = self.start or 0.0
        step = max(self.fake.secs_per_word, 0.01)
        token: dict[str, Any] = {
            "text": self.words[index] if index == 0 else f" {self.words[index]}",
            "start_ms": int((start + index * step) * 1000),
            "end_ms": int((start + (index + 1) * step) * 1000),
            "confidence": 0.97,
            "is_final": final,
        }
        if self.config.get("enable_speaker_diarization"):
            token["speaker"] = "1"
        if self.config.get("enable_language_identification"):
            token["language"] = self.fake.language
        return token

    async def _finish_words(self, *, marker: str | None) -> None:
        """Every word of the utterance still open becomes final (then ``marker``)."""
        tokens = []
        if self.start is not None:
            tokens = [self._token(i, final=True) for i in range(self.final_count, len(self.words))]
            self.start = None
            self.words = []
            self.final_count = 0
        if marker is not None:
            tokens.append({"text": marker, "is_final": True})
        if tokens:
            await self.send({"tokens": tokens})


def _invalid(config: dict[str, Any]) -> str | None:
    unknown = set(config) - CONFIG_FIELDS
    if unknown:
        return f"Unknown configuration fields: {sorted(unknown)}"
    model = config.get("model")
    if not isinstance(model, str) or not model.startswith("stt-rt"):
        return f"Invalid model: {model!r}"
    audio_format = config.get("audio_format")
    if audio_format not in AUDIO_FORMATS:
        return f"Unsupported audio_format: {audio_format!r}"
    rate = config.get("sample_rate")
    if not isinstance(rate, int) or rate <= 0:
        return "sample_rate is required for raw audio formats"
    if config.get("num_channels") != 1:
        return "num_channels is required for raw audio formats (1 here)"
    hints = config.get("language_hints")
    if hints is not None and (
        not isinstance(hints, list) or not all(isinstance(h, str) and len(h) == 2 for h in hints)
    ):
        return "language_hints must be a list of two-letter codes"
    context = config.get("context")
    if context is not None and (not isinstance(context, dict) or set(context) - CONTEXT_FIELDS):
        return "context must be an object with general, text, terms, translation_terms"
    delay = config.get("max_endpoint_delay_ms")
    if delay is not None and not 500 <= delay <= 3000:
        return "max_endpoint_delay_ms must be between 500 and 3000"
    return None


TTS_PATH = "/tts-websocket"
TTS_MODELS = ("tts-rt-v1", "tts-rt-v1-preview", "tts-rt-v2")
TTS_AUDIO_FORMATS = ("pcm_s16le", "pcm_mulaw")
"""The formats the fake makes (Soniox has more: ``pcm_f32le``, ``pcm_alaw``, ``wav``, ...)."""
TTS_SAMPLE_RATES = (8000, 16000, 24000, 44100, 48000)
TTS_MAX_STREAMS = 5
TTS_CONFIG_FIELDS = frozenset(
    {
        "api_key",
        "stream_id",
        "model",
        "language",
        "voice",
        "audio_format",
        "sample_rate",
        "bitrate",
        "speed",
        "reduce_silence",
        "return_timestamps",
        "client_reference_id",
    }
)


@dataclass
class _TTSStream:
    config: dict[str, Any]
    text: str = ""
    """Text received and not yet spoken (an incomplete word)."""
    spoken_secs: float = 0.0
    space: str = ""
    """Whitespace before the next word, sent with its characters."""
    held: dict[str, Any] | None = None
    """The last audio message, held until it is known whether it is the stream's last."""
    work: asyncio.Queue[tuple[str, bool]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class FakeSonioxTTSServer(ServedWebsocketFake):
    """Soniox's real-time text-to-speech socket on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.05,
        chunk_delay: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.received: list[dict[str, Any]] = []
        """Every JSON message received, in order (all connections)."""
        self.sent: list[dict[str, Any]] = []
        """Every message sent, in order (all connections)."""
        self.headers: list[dict[str, str]] = []
        """Each connection's handshake headers (names in lower case)."""
        self.error_next: tuple[int, str] | None = None
        """Answer the next text message with this error (code, message), then terminate."""
        self.cancelled: list[str] = []
        """The streams stopped by ``cancel`` while they still had audio to send."""
        self._server = LocalWebsocketServer(self._handle, api_key=None, auth=[], path=TTS_PATH)

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The messages received of a kind: ``config``, ``text``, ``cancel`` or ``keep_alive``."""
        return [m for m in self.received if _kind(m) == kind]

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        session = _TTSSession(self, ws)
        try:
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    await session.on_message(raw)
        finally:
            for stream in session.streams.values():
                if stream.task is not None:
                    stream.task.cancel()


def _kind(message: dict[str, Any]) -> str:
    if "keep_alive" in message:
        return "keep_alive"
    if "cancel" in message:
        return "cancel"
    if "text" in message or "text_end" in message:
        return "text"
    return "config"


class _TTSSession:
    """One connection's streams."""

    def __init__(self, fake: FakeSonioxTTSServer, ws: ServerConnection) -> None:
        self.fake = fake
        self.ws = ws
        self.streams: dict[str, _TTSStream] = {}
        self.lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            self.fake.sent.append(message)
            await self.ws.send(json.dumps(message))

    async def fail(self, stream_id: Any, code: int, text: str) -> None:
        """A stream's error, then its end (the connection stays open)."""
        stream = self.streams.pop(stream_id, None) if isinstance(stream_id, str) else None
        if stream is not None and stream.task is not None:
            stream.task.cancel()
        await self.send({"stream_id": stream_id, "error_code": code, "error_message": text})
        if isinstance(stream_id, str):
            await self.send({"terminated": True, "stream_id": stream_id})

    async def on_message(self, raw: str | bytes) -> None:
        message = json_object(raw)
        if message is None:
            await self.fail(None, 400, "Messages must be JSON objects.")
            return
        self.fake.received.append(message)
        kind = _kind(message)
        if kind == "keep_alive":
            return
        stream_id = message.get("stream_id")
        if not isinstance(stream_id, str) or not 1 <= len(stream_id) <= 256:
            await self.fail(None, 400, "Missing or invalid stream_id.")
            return
        if kind == "config":
            await self.configure(stream_id, message)
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            await self.fail(stream_id, 400, "Unknown stream_id: send its configuration first.")
            return
        if kind == "cancel":
            self.streams.pop(stream_id, None)
            if stream.task is not None and not stream.task.done():
                stream.task.cancel()
                self.fake.cancelled.append(stream_id)
            await self.send({"terminated": True, "stream_id": stream_id})
            return
        text, end = message.get("text", ""), message.get("text_end", False)
        if set(message) - {"text", "text_end", "stream_id"} or not (
            isinstance(text, str) and isinstance(end, bool) and len(text) <= 5000
        ):
            await self.fail(stream_id, 400, "Invalid text message.")
            return
        if self.fake.error_next is not None:
            code, reason = self.fake.error_next
            self.fake.error_next = None
            await self.fail(stream_id, code, reason)
            return
        stream.work.put_nowait((text, end))

    def _authorized(self, config: dict[str, Any]) -> tuple[int, str] | None:
        assert self.ws.request is not None
        header = self.ws.request.headers.get("Authorization")
        in_config = config.get("api_key")
        if header is not None and in_config is not None:
            return 400, "Send the API key either in the Authorization header or in the config."
        if self.fake.api_key is None:
            return None
        if header == f"Bearer {self.fake.api_key}" or in_config == self.fake.api_key:
            return None
        return 401, "Invalid API key."

    async def configure(self, stream_id: str, config: dict[str, Any]) -> None:
        refused = self._authorized(config)
        if refused is None:
            problem = _tts_config_problem(config)
            refused = (400, problem) if problem is not None else None
        if refused is None and stream_id in self.streams:
            refused = 400, f"stream_id {stream_id!r} is already active."
        if refused is None and len(self.streams) >= TTS_MAX_STREAMS:
            refused = 400, f"At most {TTS_MAX_STREAMS} active streams per connection."
        if refused is not None:
            await self.send(
                {"stream_id": stream_id, "error_code": refused[0], "error_message": refused[1]}
            )
            await self.send({"terminated": True, "stream_id": stream_id})
            return
        stream = self.streams[stream_id] = _TTSStream(config)
        stream.task = asyncio.create_task(self._speak(stream_id, stream))

    async def _speak(self, stream_id: str, stream: _TTSStream) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                text, end = await stream.work.get()
                stream.text += text
                words = stream.text.split()
                if not end and stream.text and not stream.text[-1].isspace():
                    stream.text = words.pop() if words else stream.text
                else:
                    stream.text = ""
                # Keep the whitespace that preceded each word.
                for word in words:
                    await self._word(stream_id, stream, word)
                    stream.space = " "
                if end:
                    last = stream.held or {"audio": "", "stream_id": stream_id}
                    stream.held = None
                    await self.send(last | {"audio_end": True})
                    await self.send({"terminated": True, "stream_id": stream_id})
                    self.streams.pop(stream_id, None)
                    return

    async def _word(self, stream_id: str, stream: _TTSStream, word: str) -> None:
        config = stream.config
        rate = int(config.get("sample_rate") or 24000)
        ulaw = config["audio_format"] == "pcm_mulaw"
        pcm = tone_pcm(self.fake.secs_per_word, rate)
        step = max(2, int(self.fake.chunk_secs * rate) * 2)
        start = stream.spoken_secs
        for n, i in enumerate(range(0, len(pcm), step)):
            piece = pcm[i : i + step]
            message: dict[str, Any] = {
                "audio": base64.b64encode(table_pcm_to_ulaw(piece) if ulaw else piece).decode(),
                "audio_end": False,
                "stream_id": stream_id,
            }
            if n == 0 and config.get("return_timestamps"):
                chars = list(stream.space + word)
                width = self.fake.secs_per_word / max(1, len(word))
                starts = [start] * len(stream.space) + [
                    round(start + k * width, 4) for k in range(len(word))
                ]
                ends = [start] * len(stream.space) + [
                    round(start + (k + 1) * width, 4) for k in range(len(word))
                ]
                message["timestamps"] = {
                    "characters": chars,
                    "character_start_times_seconds": starts,
                    "character_end_times_seconds": ends,
                }
            if stream.held is not None:
                await self.send(stream.held)
            stream.held = message
            await asyncio.sleep(self.fake.chunk_delay)
        stream.spoken_secs = start + len(pcm) / 2 / rate


def _tts_config_problem(config: dict[str, Any]) -> str | None:
    unknown = set(config) - TTS_CONFIG_FIELDS
    if unknown:
        return f"Unknown configuration fields: {sorted(unknown)}"
    for name in ("model", "language", "voice", "audio_format"):
        value = config.get(name)
        if not isinstance(value, str) or not 1 <= len(value) <= 50:
            return f"Missing required field: {name}"
    if config["model"] not in TTS_MODELS:
        return f"Invalid model: {config['model']!r}"
    if config["audio_format"] not in TTS_AUDIO_FORMATS:
        return f"Unsupported audio_format: {config['audio_format']!r}"
    if config.get("sample_rate") not in TTS_SAMPLE_RATES:
        return f"sample_rate must be one of {TTS_SAMPLE_RATES} for raw audio formats"
    speed = config.get("speed")
    if speed is not None and (not isinstance(speed, int | float) or not 0.7 <= speed <= 1.3):
        return "speed must be between 0.7 and 1.3"
    for name in ("reduce_silence", "return_timestamps"):
        if config.get(name) is not None and not isinstance(config[name], bool):
            return f"{name} must be a boolean"
    return None
