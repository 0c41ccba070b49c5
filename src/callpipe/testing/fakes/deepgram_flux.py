"""FakeDeepgramFluxServer: Deepgram Flux, the turn-taking transcription WebSocket (``/v2/listen``).

The handshake is Deepgram's: the key in ``Authorization: Token <key>`` (or ``Bearer``), the
options as query parameters (``model`` = ``flux-general-en`` | ``flux-general-multi``,
``encoding`` and ``sample_rate`` for raw audio, ``eot_threshold``, ``eager_eot_threshold``,
``eot_timeout_ms``, repeated ``keyterm`` / ``tag`` / ``language_hint``, ``numerals``,
``profanity_filter``, ``redact``, ``mip_opt_out``). Refusals are HTTP 400/401 with the reason in
the ``dg-error`` header and a JSON body, as on ``/v1/listen``.

Once open, the server sends ``Connected``; the client streams binary audio and may send the
control messages ``Configure`` (new thresholds, keyterms, numerals, language hints: answered by
``ConfigureSuccess`` with the settings now in force, or ``ConfigureFailure``), ``ForceEndTurn``
and ``CloseStream``. ``CloseStream`` is answered as documented: an ``Update`` for the audio still
held (no ``EndOfTurn``), then the server closes without a close status. A message the server
cannot parse gets an ``Error`` (``UNPARSABLE_CLIENT_MESSAGE``) and the socket is closed.

Every server message carries ``sequence_id`` (0, 1, 2, ... per connection). Transcripts come in
``TurnInfo`` messages with an ``event``:

- ``StartOfTurn`` when loud audio starts a turn;
- ``Update`` for every ``update_secs`` of audio received (in or out of a turn, as Flux does);
- ``EagerEndOfTurn`` after ``eager_secs`` of quiet, only when ``eager_eot_threshold`` was set;
- ``TurnResumed`` when the caller speaks again after an ``EagerEndOfTurn``;
- ``EndOfTurn`` after ``end_of_turn_secs`` of quiet (``trigger: "model"``), after
  ``eot_timeout_ms`` when that is shorter (``"timeout"``), or on ``ForceEndTurn``
  (``"manual"``). ``turn_index`` counts turns.

The fake "hears" by energy, counting time in received audio (not wall-clock time), so tests are
deterministic. The words of a turn are the next entry of ``transcripts`` (``"hello"`` when
empty): revealed with the speech (one per ``secs_per_word``), all of them once the caller went
quiet, so ``EndOfTurn`` repeats the ``EagerEndOfTurn`` transcript before it, as Flux promises.
``flux-general-multi`` adds ``languages`` (``detected_languages``) to each ``TurnInfo``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal, ServedWebsocketFake
from callpipe.testing.fakes._stt import DroppingFake, Hearing
from callpipe.testing.fakes.deepgram import _refusal

MODELS = ("flux-general-en", "flux-general-multi")
ENCODINGS = ("linear16", "linear32", "mulaw", "alaw", "opus", "ogg-opus")
"""Raw encodings Flux documents (``sample_rate`` is then required)."""
SAMPLE_RATES = ("8000", "16000", "24000", "44100", "48000")
THRESHOLD_FIELDS = ("eot_threshold", "eager_eot_threshold", "eot_timeout_ms")


def _validate(request: Any) -> Refusal | None:
    query = parse_qs(urlsplit(request.path).query)
    model = query.get("model", [None])[-1]
    if model not in MODELS:
        return _refusal(400, "Bad Request", f"Invalid query string. Unknown model: {model}")
    encoding = query.get("encoding", [None])[-1]
    if encoding is not None:
        if encoding not in ENCODINGS:
            return _refusal(400, "Bad Request", f"Unknown encoding: {encoding}")
        if query.get("sample_rate", [None])[-1] not in SAMPLE_RATES:
            return _refusal(400, "Bad Request", "Unsupported or missing sample_rate")
    if query.get("language_hint") and model != "flux-general-multi":
        return _refusal(400, "Bad Request", "language_hint requires flux-general-multi")
    return None


class FakeDeepgramFluxServer(DroppingFake, ServedWebsocketFake):
    """See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        energy_threshold: float = 300.0,
        update_secs: float = 0.25,
        secs_per_word: float = 0.3,
        eager_secs: float = 0.1,
        end_of_turn_secs: float = 0.3,
    ) -> None:
        self.energy_threshold = energy_threshold
        self.update_secs = update_secs
        self.secs_per_word = secs_per_word
        self.eager_secs = eager_secs
        self.end_of_turn_secs = end_of_turn_secs
        self.word_confidence = 0.95
        """Confidence of every word the fake sends."""
        self.detected_languages = ["en"]
        self.transcripts: deque[str] = deque()
        self.sent: list[dict[str, Any]] = []
        """Every JSON message sent, in order (all connections)."""
        self.received: list[dict[str, Any]] = []
        """Every JSON control message received."""
        self.queries: list[dict[str, str]] = []
        """Each connection's query, the last value of each key (see ``query_lists``)."""
        self.query_lists: list[dict[str, list[str]]] = []
        self.audio = bytearray()
        self.connections = 0
        self.close_streams = 0
        self.configure_failures: deque[tuple[str, str]] = deque()
        """(code, description) to answer the next ``Configure`` messages with a failure."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Token "), ("header", "Authorization", "Bearer ")],
            path="/v2/listen",
            validate=_validate,
            unauthorized=_refusal(401, "INVALID_AUTH", "Invalid credentials."),
        )

    @property
    def audio_bytes(self) -> int:
        return len(self.audio)

    def events(self, name: str | None = None) -> list[str]:
        """The ``TurnInfo`` events sent (only those named ``name`` if given)."""
        return [
            m["event"]
            for m in self.sent
            if m["type"] == "TurnInfo" and (name is None or m["event"] == name)
        ]

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        lists = parse_qs(urlsplit(ws.request.path).query)
        self.query_lists.append(lists)
        query = {k: v[-1] for k, v in lists.items()}
        self.queries.append(query)
        session = _Session(self, ws, query, lists)
        with contextlib.suppress(ConnectionClosed):
            await session.send({"type": "Connected", "request_id": session.request_id})
            await self._feed(ws, session)


class _Session(Hearing):
    """One connection: its settings, audio clock and turn state (``start``: the turn's)."""

    def __init__(
        self,
        fake: FakeDeepgramFluxServer,
        ws: ServerConnection,
        query: dict[str, str],
        lists: dict[str, list[str]],
    ) -> None:
        super().__init__(
            rate=int(query.get("sample_rate", "16000")),
            threshold=fake.energy_threshold,
            ulaw=query.get("encoding") == "mulaw",
        )
        self.fake = fake
        self.ws = ws
        self.request_id = str(uuid.uuid4())
        self.sequence = 0
        self.model = query["model"]
        self.thresholds: dict[str, float | int] = {
            "eot_threshold": float(query.get("eot_threshold", "0.7")),
            "eot_timeout_ms": int(query.get("eot_timeout_ms", "5000")),
        }
        if "eager_eot_threshold" in query:
            self.thresholds["eager_eot_threshold"] = float(query["eager_eot_threshold"])
        self.keyterms = lists.get("keyterm", [])
        self.language_hints = lists.get("language_hint", [])
        self.numerals = query.get("numerals") == "true"
        self.last_update = 0.0
        self.turn_index = 0
        self.eager_sent = False
        self.text = ""

    async def send(self, message: dict[str, Any]) -> None:
        message["sequence_id"] = self.sequence
        self.sequence += 1
        self.fake.sent.append(message)
        await self.ws.send(json.dumps(message))

    def _words(self, quiet: bool) -> str:
        words = self.text.split()
        if quiet:
            return self.text
        return " ".join(words[: max(1, int(self.speech / self.fake.secs_per_word))])

    async def turn_info(self, event: str, transcript: str, trigger: str | None = None) -> None:
        start = self.start if self.start is not None else self.t
        tokens = transcript.split()
        step = (self.t - start) / max(1, len(tokens))
        message: dict[str, Any] = {
            "type": "TurnInfo",
            "request_id": self.request_id,
            "event": event,
            "turn_index": self.turn_index,
            "audio_window_start": round(start, 3),
            "audio_window_end": round(self.t, 3),
            "transcript": transcript,
            "words": [
                {
                    "word": token,
                    "confidence": self.fake.word_confidence,
                    "start": round(start + i * step, 3),
                    "end": round(start + (i + 1) * step, 3),
                }
                for i, token in enumerate(tokens)
            ],
            "end_of_turn_confidence": 0.9 if event == "EndOfTurn" else 0.1,
        }
        if trigger is not None:
            message["trigger"] = trigger
        if self.model == "flux-general-multi":
            message["languages"] = list(self.fake.detected_languages)
            if self.language_hints:
                message["languages_hinted"] = list(self.language_hints)
        await self.send(message)

    async def speech_started(self) -> None:
        self.text = self.fake.transcripts.popleft() if self.fake.transcripts else "hello"
        await self.turn_info("StartOfTurn", "")

    async def control(self, message: str) -> bool:
        try:
            control = json.loads(message)
            kind = control["type"]
        except (ValueError, TypeError, KeyError):
            control, kind = None, None
        if not isinstance(control, dict) or kind not in (
            "Configure",
            "ForceEndTurn",
            "CloseStream",
        ):
            await self.send(
                {
                    "type": "Error",
                    "code": "UNPARSABLE_CLIENT_MESSAGE",
                    "description": f"Could not parse client message: {message[:80]}",
                }
            )
            await self.ws.close(1008, "UNPARSABLE_CLIENT_MESSAGE")
            return False
        self.fake.received.append(control)
        if kind == "Configure":
            await self.configure(control)
        elif kind == "ForceEndTurn":
            await self.end_of_turn("manual")
        else:
            self.fake.close_streams += 1
            await self.update()
            no_status: Any = None  # an empty close frame: no status code, as Flux does
            await self.ws.close(no_status)
            return False
        return True

    async def audio(self, data: bytes) -> bool:
        self.fake.audio += data
        if await self.hear(data):
            if self.eager_sent:
                self.eager_sent = False
                await self.turn_info("TurnResumed", self.text)
        elif self.start is not None:
            timeout = int(self.thresholds["eot_timeout_ms"]) / 1000
            if self.quiet_for(min(self.fake.end_of_turn_secs, timeout)):
                await self.end_of_turn(
                    "model" if self.fake.end_of_turn_secs <= timeout else "timeout"
                )
                return True
            eager = "eager_eot_threshold" in self.thresholds
            if eager and not self.eager_sent and self.quiet_for(self.fake.eager_secs):
                self.eager_sent = True
                await self.turn_info("EagerEndOfTurn", self.text)
                return True
        if self.t - self.last_update >= self.fake.update_secs:
            await self.update()
        return True

    async def update(self) -> None:
        self.last_update = self.t
        in_turn = self.start is not None
        quiet = in_turn and self.t - self.last_voice > 0.0
        await self.turn_info("Update", self._words(quiet) if in_turn else "")

    async def end_of_turn(self, trigger: str) -> None:
        if self.start is None:
            return
        await self.turn_info("EndOfTurn", self.text, trigger)
        self.start = None
        self.eager_sent = False
        self.turn_index += 1
        self.last_update = self.t

    async def configure(self, control: dict[str, Any]) -> None:
        failure = self._configure_error(control)
        if failure is None and self.fake.configure_failures:
            failure = self.fake.configure_failures.popleft()
        if failure is not None:
            code, description = failure
            await self.send(
                {
                    "type": "ConfigureFailure",
                    "request_id": self.request_id,
                    "code": code,
                    "description": description,
                }
            )
            return
        for name, value in (control.get("thresholds") or {}).items():
            self.thresholds[name] = value
        if "keyterms" in control:
            keyterms = control["keyterms"]
            self.keyterms = [keyterms] if isinstance(keyterms, str) else list(keyterms)
        if "language_hints" in control:
            self.language_hints = list(control["language_hints"])
        if "numerals" in control:
            self.numerals = bool(control["numerals"])
        answer: dict[str, Any] = {
            "type": "ConfigureSuccess",
            "request_id": self.request_id,
            "thresholds": dict(self.thresholds),
            "keyterms": list(self.keyterms),
            "numerals": self.numerals,
        }
        if self.model == "flux-general-multi":
            answer["language_hints"] = list(self.language_hints)
        await self.send(answer)

    def _configure_error(self, control: dict[str, Any]) -> tuple[str, str] | None:
        thresholds = control.get("thresholds") or {}
        unknown = set(thresholds) - set(THRESHOLD_FIELDS)
        if unknown:
            return "INVALID_CONFIGURE", f"unknown thresholds: {sorted(unknown)}"
        if "language_hints" in control and self.model != "flux-general-multi":
            return "INVALID_CONFIGURE", "language_hints require flux-general-multi"
        return None
