"""FakeAssemblyAIServer: AssemblyAI's Universal-Streaming transcription WebSocket (``/v3/ws``).

The handshake is AssemblyAI's: the API key (or a temporary token) as the raw value of the
``Authorization`` header, or a temporary ``token`` query parameter; the options as query
parameters (``speech_model``, required; ``sample_rate``; ``encoding`` = ``pcm_s16le`` |
``pcm_mulaw``; ``format_turns``, the turn thresholds, JSON-array ``keyterms_prompt`` /
``language_codes``, ...). As documented, the upgrade is accepted and problems are reported in
the session: an ``Error`` message (``error_code``, ``error``), then a close with that code. A
wrong key gets ``1008`` "Unauthorized Connection"; bad options ``3006``; an audio message
shorter than 50 ms or longer than 1000 ms ``3007``; an unknown or unparsable message ``3006``.

Once open, the server sends ``Begin`` (``id``, ``expires_at``). The client streams binary
audio and may send ``ForceEndpoint`` (the turn ends now), ``UpdateConfiguration`` (recorded and
applied) and ``Terminate`` (the turn still open ends, then ``Termination`` and a 1000 close).

The fake "hears" by energy, counting time in received audio (not wall-clock time), so tests are
deterministic. Loud audio starts a turn (``SpeechStarted`` first on U3 Pro models); the words
of a turn are the next entry of ``transcripts`` (``"Hello."`` when empty), written as the
formatted text. While the caller speaks, a partial ``Turn`` (``end_of_turn: false``, plain
lower-case words, one more per ``secs_per_word``) goes out every ``partial_secs`` of audio.
Quiet ends the turn after ``min_turn_silence`` ms when the fake's ``end_of_turn_confidence``
reaches ``end_of_turn_confidence_threshold``, else after ``max_turn_silence`` ms. The end of a
turn is, on U3 Pro models, one formatted ``Turn`` with ``end_of_turn: true``; on the
Universal-Streaming models a plain one, then (``format_turns=true``) a formatted one.
``language_detection`` adds ``language_code`` / ``language_confidence`` and ``speaker_labels``
adds ``speaker_label`` to the end of a turn.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.testing.fakes._server import LocalWebsocketServer, ServedWebsocketFake
from callpipe.testing.fakes._stt import DroppingFake

MODELS = (
    "universal-streaming-english",
    "universal-streaming-multilingual",
    "u3-rt-pro",
    "u3-rt-pro-beta-1",
    "whisper-rt",
    "universal-3-5-pro",
    "universal-3-6",
    "universal-3-6-pro",
    "u3-pro",
)
"""The ``speech_model`` values of AssemblyAI's SDK (``SpeechModel``)."""
U3_PRO_PREFIXES = ("u3-rt-pro", "universal-3-5-pro", "universal-3-6-pro", "u3-pro")
ENCODINGS = ("pcm_s16le", "pcm_mulaw")
CLIENT_MESSAGES = ("Terminate", "ForceEndpoint", "KeepAlive", "UpdateConfiguration")
DEFAULT_MIN_TURN_SILENCE_MS = 400
DEFAULT_MAX_TURN_SILENCE_MS = 1280
DEFAULT_CONFIDENCE_THRESHOLD = 0.4


def plain(text: str) -> str:
    """The unformatted form of ``text``: lower case, no punctuation."""
    return " ".join(re.sub(r"[^\w\s']", " ", text).lower().split())


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


class FakeAssemblyAIServer(DroppingFake, ServedWebsocketFake):
    """See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        token: str | None = None,
        energy_threshold: float = 300.0,
        partial_secs: float = 0.2,
        secs_per_word: float = 0.2,
    ) -> None:
        self.api_key = api_key
        self.token = token
        """A temporary token the fake also accepts (header or ``token`` query parameter)."""
        self.energy_threshold = energy_threshold
        self.partial_secs = partial_secs
        self.secs_per_word = secs_per_word
        self.end_of_turn_confidence = 0.9
        """The model's confidence that a quiet caller is done (vs the query's threshold)."""
        self.detected_language = ("en", 0.95)
        self.speaker = "A"
        self.transcripts: deque[str] = deque()
        self.sent: list[dict[str, Any]] = []
        """Every JSON message sent, in order (all connections)."""
        self.received: list[dict[str, Any]] = []
        """Every JSON control message received."""
        self.queries: list[dict[str, str]] = []
        """Each connection's query (last value of each key)."""
        self.headers: list[dict[str, str]] = []
        self.audio = bytearray()
        """The audio received, as sent (µ-law stays µ-law)."""
        self.chunk_secs: list[float] = []
        """The duration of every audio message received."""
        self.connections = 0
        self._server = LocalWebsocketServer(self._handle, api_key=None, auth=[], path="/v3/ws")

    def turns(self, *, final: bool | None = None) -> list[dict[str, Any]]:
        """The ``Turn`` messages sent (only the ends of turns, or only partials, if asked)."""
        return [
            m
            for m in self.sent
            if m["type"] == "Turn" and (final is None or m["end_of_turn"] is final)
        ]

    def control(self, kind: str) -> list[dict[str, Any]]:
        """The control messages of type ``kind`` received."""
        return [m for m in self.received if m.get("type") == kind]

    def _authorized(self, ws: ServerConnection, query: dict[str, str]) -> bool:
        assert ws.request is not None
        if self.api_key is None:
            return True
        header = ws.request.headers.get("Authorization")
        accepted = {self.api_key, self.token} - {None}
        return header in accepted or (self.token is not None and query.get("token") == self.token)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.connections += 1
        query = {k: v[-1] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        self.queries.append(query)
        self.headers.append(dict(ws.request.headers.raw_items()))
        session = _Session(self, ws, query)
        with contextlib.suppress(ConnectionClosed):
            if not self._authorized(ws, query):
                await session.fail(1008, "Unauthorized Connection: Invalid API key")
                return
            problem = _invalid(query)
            if problem is not None:
                await session.fail(3006, problem)
                return
            await session.send(
                {"type": "Begin", "id": session.id, "expires_at": int(time.time()) + 10800}
            )
            await self._feed(ws, session)

    async def _control(self, session: _Session, message: str) -> bool:
        try:
            control = json.loads(message)
        except ValueError:
            await session.fail(3006, f"Invalid JSON: {message[:80]}")
            return False
        kind = control.get("type") if isinstance(control, dict) else None
        if kind not in CLIENT_MESSAGES:
            await session.fail(3006, f"Invalid Message Type: {message[:80]}")
            return False
        self.received.append(control)
        if kind == "ForceEndpoint":
            await session.end_of_turn()
        elif kind == "UpdateConfiguration":
            session.update(control)
        elif kind == "Terminate":
            await session.end_of_turn()
            await session.send(
                {
                    "type": "Termination",
                    "audio_duration_seconds": int(session.t),
                    "session_duration_seconds": int(time.monotonic() - session.began),
                }
            )
            await session.ws.close(1000)
            return False
        return True


def _invalid(query: dict[str, str]) -> str | None:
    model = query.get("speech_model")
    if model not in MODELS:
        return f"Invalid speech_model: {model!r}"
    encoding = query.get("encoding", "pcm_s16le")
    if encoding not in ENCODINGS:
        return f"Invalid encoding: {encoding!r}"
    rate = query.get("sample_rate", "16000")
    if not rate.isdigit() or int(rate) <= 0:
        return "Sample rate must be a positive integer"
    for name in ("keyterms_prompt", "language_codes"):
        if name in query:
            try:
                value = json.loads(query[name])
            except ValueError:
                value = None
            if not isinstance(value, list):
                return f"Invalid {name}: expected a JSON array"
    if "prompt" in query and not model.startswith(U3_PRO_PREFIXES):
        return f"prompt is not supported for {model}"
    return None


class _Session:
    """One connection: its settings, audio clock and turn state."""

    def __init__(self, fake: FakeAssemblyAIServer, ws: ServerConnection, query: dict[str, str]):
        self.fake = fake
        self.ws = ws
        self.query = query
        self.id = str(uuid.uuid4())
        self.began = time.monotonic()
        self.model = query.get("speech_model", "")
        self.u3 = self.model.startswith(U3_PRO_PREFIXES)
        self.mulaw = query.get("encoding") == "pcm_mulaw"
        self.rate = int(query.get("sample_rate", "16000") or 16000)
        self.t = 0.0
        self.turn_order = 0
        self.turn_start: float | None = None
        self.speech = 0.0
        self.last_voice = 0.0
        self.last_partial = 0.0
        self.text = ""

    async def send(self, message: dict[str, Any]) -> None:
        self.fake.sent.append(message)
        await self.ws.send(json.dumps(message))

    async def fail(self, code: int, error: str) -> None:
        await self.send({"type": "Error", "error_code": code, "error": error})
        await self.ws.close(code, error[:120])

    def _ms(self, name: str, default: int) -> float:
        return int(self.query.get(name, default)) / 1000

    def update(self, control: dict[str, Any]) -> None:
        for name, value in control.items():
            if name != "type":
                self.query[name] = value if isinstance(value, str) else json.dumps(value)

    async def control(self, message: str) -> bool:
        return await self.fake._control(self, message)

    async def audio(self, data: bytes) -> bool:
        pcm = ulaw_to_pcm(data) if self.mulaw else data
        duration = len(pcm) / 2 / self.rate
        self.fake.chunk_secs.append(duration)
        if not 0.05 - 1e-9 <= duration <= 1.0:
            await self.fail(
                3007,
                f"Input duration violation: {duration * 1000:.0f} ms. "
                "Expected between 50 and 1000 ms",
            )
            return False
        self.fake.audio += data
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
        rms = float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0
        self.t += duration
        if rms >= self.fake.energy_threshold:
            if self.turn_start is None:
                self.turn_start = self.t - duration
                self.speech = 0.0
                self.last_partial = self.t
                self.text = self.fake.transcripts.popleft() if self.fake.transcripts else "Hello."
                if self.u3:
                    await self.send(
                        {"type": "SpeechStarted", "timestamp": int(self.turn_start * 1000)}
                    )
            self.speech += duration
            self.last_voice = self.t
        elif self.turn_start is not None:
            quiet = self.t - self.last_voice
            threshold = float(
                self.query.get("end_of_turn_confidence_threshold", DEFAULT_CONFIDENCE_THRESHOLD)
            )
            confident = self.fake.end_of_turn_confidence >= threshold
            wait = (
                self._ms("min_turn_silence", DEFAULT_MIN_TURN_SILENCE_MS)
                if confident
                else self._ms("max_turn_silence", DEFAULT_MAX_TURN_SILENCE_MS)
            )
            if quiet >= wait:
                await self.end_of_turn()
                return True
        if self.turn_start is not None and self.t - self.last_partial >= self.fake.partial_secs:
            self.last_partial = self.t
            await self._turn(self._heard(), end=False, formatted=False)
        return True

    def _heard(self) -> str:
        words = plain(self.text).split()
        return " ".join(words[: max(1, int(self.speech / self.fake.secs_per_word))])

    async def _turn(self, transcript: str, *, end: bool, formatted: bool) -> None:
        start = self.turn_start if self.turn_start is not None else self.t
        tokens = transcript.split()
        step = (self.last_voice - start) / max(1, len(tokens))
        message: dict[str, Any] = {
            "type": "Turn",
            "turn_order": self.turn_order,
            "turn_is_formatted": formatted,
            "end_of_turn": end,
            "transcript": transcript,
            "end_of_turn_confidence": self.fake.end_of_turn_confidence if end else 0.05,
            "words": [
                {
                    "start": int((start + i * step) * 1000),
                    "end": int((start + (i + 1) * step) * 1000),
                    "text": token,
                    "confidence": 0.95,
                    "word_is_final": True,
                }
                for i, token in enumerate(tokens)
            ],
        }
        if end and _flag(self.query.get("language_detection")):
            code, confidence = self.fake.detected_language
            message["language_code"] = code
            message["language_confidence"] = confidence
        if end and _flag(self.query.get("speaker_labels")):
            message["speaker_label"] = self.fake.speaker
        await self.send(message)

    async def end_of_turn(self) -> None:
        """End the open turn (silence, ``ForceEndpoint`` or ``Terminate``)."""
        if self.turn_start is None:
            return
        if self.u3:
            await self._turn(self.text, end=True, formatted=True)
        else:
            await self._turn(plain(self.text), end=True, formatted=False)
            if _flag(self.query.get("format_turns")):
                await self._turn(self.text, end=True, formatted=True)
        self.turn_start = None
        self.turn_order += 1
