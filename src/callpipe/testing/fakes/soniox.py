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
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Unpack

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import LocalWebsocketServer, json_object
from callpipe.testing.fakes._stt import Hearing, PartialsFake, PartialsOptions

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
