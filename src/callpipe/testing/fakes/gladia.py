"""FakeGladiaServer: Gladia's live speech-to-text (v2): ``POST /v2/live``, then its WebSocket.

The session request is Gladia's: the key in ``x-gladia-key`` (a wrong one gets 401), an
optional ``?region=`` (``eu-west`` or ``us-west``) and a JSON body with the session's
configuration (``encoding``, ``bit_depth``, ``sample_rate``, ``channels``, ``model``,
``endpointing``, ``language_config``, ``pre_processing``, ``realtime_processing``,
``post_processing``, ``messages_config``, ...); an unknown field or a value outside Gladia's
lists gets 400 with ``validation_errors``. The answer (201) is ``{id, created_at, url}``; the
``url`` is the fake's socket with the session's token (``/v2/live?token=...``); an unknown
token is refused (404). A session's socket may be opened again after a drop.

On the socket the client streams audio as binary messages or as ``{"type": "audio_chunk",
"data": {"chunk": <base64>}}``, and ends with ``{"type": "stop_recording"}``. The fake "hears"
by energy (``wav/pcm`` 16 bits or ``wav/ulaw``), counting time in received audio, so tests are
deterministic: loud audio starts an utterance whose words are the next entry of
``transcripts`` ("hello" when empty); ``endpointing`` seconds of quiet (Gladia's default 0.05)
end it. What it sends follows ``messages_config`` with Gladia's defaults: ``speech_start`` and
``speech_end`` (speech events, on), a partial ``transcript`` every ``partial_secs`` of speech
(partial transcripts, off), the final ``transcript`` (on), an ``audio_chunk`` acknowledgment per
chunk (acknowledgments, on), and at ``stop_recording`` its acknowledgment, the open
utterance's end, ``post_transcript`` and ``post_final_transcript`` (post-processing events, on),
``start_recording`` / ``end_recording`` / ``end_session`` (lifecycle, off; ``start_session``
is not sent on the socket, Gladia's SDK makes it from the session's answer), then a 1000
close. Every message carries ``session_id`` and ``created_at``, as Gladia's do.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Unpack

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import (
    CreatesSessionsOverHTTP,
    LocalASGIServer,
    LocalWebsocketServer,
    Refusal,
    fake_app,
    json_object,
)
from callpipe.testing.fakes._stt import Hearing, PartialsFake, PartialsOptions

PATH = "/v2/live"
ENCODINGS = {"wav/pcm": (8, 16, 24, 32), "wav/alaw": (8,), "wav/ulaw": (8,)}
SAMPLE_RATES = (8000, 16000, 32000, 44100, 48000)
REGIONS = ("eu-west", "us-west")
INIT_FIELDS = {
    "encoding": None,
    "bit_depth": None,
    "sample_rate": None,
    "channels": None,
    "custom_metadata": None,
    "model": None,
    "endpointing": None,
    "maximum_duration_without_endpointing": None,
    "language_config": {"languages", "code_switching"},
    "pre_processing": {"audio_enhancer", "speech_threshold"},
    "realtime_processing": {
        "words_accurate_timestamps",
        "custom_vocabulary",
        "custom_vocabulary_config",
        "custom_spelling",
        "custom_spelling_config",
        "translation",
        "translation_config",
        "named_entity_recognition",
        "sentiment_analysis",
    },
    "post_processing": {"summarization", "summarization_config", "chapterization"},
    "messages_config": {
        "receive_partial_transcripts",
        "receive_final_transcripts",
        "receive_speech_events",
        "receive_pre_processing_events",
        "receive_realtime_processing_events",
        "receive_post_processing_events",
        "receive_acknowledgments",
        "receive_errors",
        "receive_lifecycle_events",
    },
    "callback": None,
    "callback_config": None,
}
"""The request's fields, with the fields of those that are objects."""
MESSAGE_DEFAULTS = {
    "receive_partial_transcripts": False,
    "receive_final_transcripts": True,
    "receive_speech_events": True,
    "receive_pre_processing_events": True,
    "receive_realtime_processing_events": True,
    "receive_post_processing_events": True,
    "receive_acknowledgments": True,
    "receive_errors": True,
    "receive_lifecycle_events": False,
}
"""Gladia's ``messages_config`` defaults."""
LANGUAGES = frozenset(
    (
        "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha "
        "haw he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr "
        "ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg "
        "th tk tl tr tt uk ur uz vi yi yo zh"
    ).split()
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeGladiaServer(CreatesSessionsOverHTTP, PartialsFake):
    """See the module docstring."""

    def __init__(self, **options: Unpack[PartialsOptions]) -> None:
        super().__init__(**options)
        self.language = "en"
        """The language of the utterances when the session names none."""
        self.inits: list[dict[str, Any]] = []
        """Each accepted session request's body."""
        self.init_headers: list[dict[str, str]] = []
        """Each session request's headers (names in lower case)."""
        self.init_queries: list[dict[str, str]] = []
        """Each session request's query."""
        self.fail_inits: list[int] = []
        """Statuses to answer the next session requests with (e.g. ``[503]``)."""
        self.sessions: dict[str, dict[str, Any]] = {}
        """Each session's configuration, by token."""
        self.controls: list[dict[str, Any]] = []
        """Every JSON message received on the sockets but audio chunks."""
        self.json_chunks = 0
        """Audio chunks received as JSON (base64) rather than binary."""
        self.error_next: str | None = None
        """Refuse the next audio chunk with this error message (the socket stays open)."""
        self._http = LocalASGIServer(fake_app([Route(PATH, self._init, methods=["POST"])]))
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=None,
            auth=[],
            path=PATH,
            validate=self._known_token,
        )

    # ------------------------------------------------------------------ POST /v2/live

    async def _init(self, request: Request) -> JSONResponse:
        self.init_headers.append({k.lower(): v for k, v in request.headers.items()})
        self.init_queries.append(dict(request.query_params))
        if self.api_key is not None and request.headers.get("x-gladia-key") != self.api_key:
            return _error(401, "Invalid or missing x-gladia-key header")
        if self.fail_inits:
            status = self.fail_inits.pop(0)
            return _error(status, "Scripted failure")
        region = request.query_params.get("region")
        if region is not None and region not in REGIONS:
            return _error(400, "Invalid region", [f"region must be one of {list(REGIONS)}"])
        body = json_object(await request.body())
        if body is None:
            return _error(400, "The body must be a JSON object")
        problems = _invalid(body)
        if problems:
            return _error(400, "Invalid request", problems)
        self.inits.append(body)
        session_id = str(uuid.uuid4())
        token = uuid.uuid4().hex
        self.sessions[token] = body | {"id": session_id}
        return JSONResponse(
            {
                "id": session_id,
                "created_at": _now(),
                "url": f"{self.url}{PATH}?token={token}",
            },
            status_code=201,
        )

    # ------------------------------------------------------------------ the socket

    def _token(self, path: str) -> str | None:
        from urllib.parse import parse_qs, urlsplit

        tokens = parse_qs(urlsplit(path).query).get("token")
        return tokens[0] if tokens else None

    def _known_token(self, request: Any) -> Refusal | None:
        token = self._token(request.path)
        if token is None or token not in self.sessions:
            return Refusal(404, "Session not found\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self._connected(ws)
        assert ws.request is not None
        token = self._token(ws.request.path)
        assert token is not None
        session = _Session(self, ws, token)
        with contextlib.suppress(ConnectionClosed):
            await session.opened()
            await self._feed(ws, session)


class _Session(Hearing):
    """One socket of a session: its configuration, audio clock and utterance."""

    def __init__(self, fake: FakeGladiaServer, ws: ServerConnection, token: str) -> None:
        config = fake.sessions[token]
        super().__init__(
            rate=int(config.get("sample_rate") or 16000),
            threshold=fake.energy_threshold,
            ulaw=config.get("encoding") == "wav/ulaw",
        )
        self.fake = fake
        self.ws = ws
        self.config = config
        self.token = token
        self.id = str(config["id"])
        self.messages = MESSAGE_DEFAULTS | (config.get("messages_config") or {})
        languages = (config.get("language_config") or {}).get("languages") or []
        self.language = languages[0] if languages else fake.language
        self.endpointing = float(config.get("endpointing") or 0.05)
        self.received = 0
        self.words: list[str] = []
        self.utterances: list[dict[str, Any]] = []
        self.count = 0

    async def send(self, kind: str, **fields: Any) -> None:
        message = {"session_id": self.id, "created_at": _now(), "type": kind} | fields
        self.fake.sent.append(message)
        await self.ws.send(json.dumps(message))

    async def opened(self) -> None:
        if self.messages["receive_lifecycle_events"] and not self.config.get("started"):
            self.config["started"] = True
            await self.send("start_recording")

    # ------------------------------------------------------------------ client messages

    async def control(self, raw: str) -> bool:
        message = json_object(raw)
        kind = message.get("type") if message is not None else None
        if message is not None and kind == "audio_chunk":
            self.fake.json_chunks += 1
            chunk = (message.get("data") or {}).get("chunk") or ""
            return await self.audio(base64.b64decode(chunk))
        if message is not None:
            self.fake.controls.append(message)
        if kind == "stop_recording":
            await self._stop()
            return False
        return True  # anything else is ignored

    async def audio(self, data: bytes) -> bool:
        start = self.received
        if self.fake.error_next is not None:
            said, self.fake.error_next = self.fake.error_next, None
            if self.messages["receive_errors"] or self.messages["receive_acknowledgments"]:
                await self.send("audio_chunk", acknowledged=False, error={"message": said})
            return True
        self.fake.audio += data
        self.received += len(data)
        before = self.t
        heard = await self.hear(data) if data else False
        if self.messages["receive_acknowledgments"]:
            await self.send(
                "audio_chunk",
                acknowledged=True,
                data={"byte_range": [start, self.received], "time_range": [before, self.t]},
            )
        if heard:
            if self.messages["receive_partial_transcripts"] and self.interim_due(
                self.fake.partial_secs
            ):
                await self._transcript(final=False)
        elif self.quiet_for(self.endpointing):
            await self._end_utterance()
        return True

    # ------------------------------------------------------------------ what it sends

    async def speech_started(self) -> None:
        self.words = (self.fake.transcripts.popleft() if self.fake.transcripts else "hello").split()
        if self.messages["receive_speech_events"]:
            await self.send("speech_start", data={"time": self.start or 0.0, "channel": 0})

    def _utterance(self, *, final: bool) -> dict[str, Any]:
        start = self.start or 0.0
        step = max(self.fake.secs_per_word, 0.01)
        count = len(self.words)
        if not final:
            count = max(1, min(count, int(self.speech / step)))
        words = [
            {
                "word": word if i == 0 else f" {word}",
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
                "confidence": 0.96,
            }
            for i, word in enumerate(self.words[:count])
        ]
        return {
            "language": self.language,
            "start": round(start, 3),
            "end": round(self.last_voice, 3),
            "confidence": 0.96,
            "channel": 0,
            "words": words,
            "text": " ".join(self.words[:count]),
        }

    async def _transcript(self, *, final: bool) -> None:
        utterance = self._utterance(final=final)
        if final:
            self.utterances.append(utterance)
        if final and not self.messages["receive_final_transcripts"]:
            return
        data = {"id": f"{self.id}_0_{self.count}", "is_final": final, "utterance": utterance}
        await self.send("transcript", data=data)

    async def _end_utterance(self) -> None:
        if self.start is None:
            return
        if self.messages["receive_speech_events"]:
            await self.send("speech_end", data={"time": self.last_voice, "channel": 0})
        await self._transcript(final=True)
        self.count += 1
        self.start = None
        self.words = []

    async def _stop(self) -> None:
        if self.messages["receive_acknowledgments"]:
            await self.send(
                "stop_recording",
                acknowledged=True,
                data={"recording_duration": self.t, "recording_left_to_process": 0.0},
            )
        await self._end_utterance()
        lifecycle = self.messages["receive_lifecycle_events"]
        if lifecycle:
            await self.send("end_recording", data={"recording_duration": self.t})
        if self.messages["receive_post_processing_events"]:
            transcription = {
                "full_transcript": " ".join(u["text"] for u in self.utterances),
                "languages": [self.language],
                "utterances": self.utterances,
            }
            await self.send("post_transcript", data=transcription)
            metadata = {
                "audio_duration": self.t,
                "number_of_distinct_channels": 1,
                "billing_time": self.t,
                "transcription_time": 0.1,
            }
            await self.send(
                "post_final_transcript",
                data={"metadata": metadata, "transcription": transcription},
            )
        if lifecycle:
            await self.send("end_session")
        self.fake.sessions.pop(self.token, None)  # the session is over
        await self.ws.close(1000)


def _error(status: int, message: str, problems: list[str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if problems:
        body["validation_errors"] = problems
    return JSONResponse(body, status_code=status)


def _invalid(body: dict[str, Any]) -> list[str]:
    """What is wrong with a session request (empty: nothing)."""
    problems = [f"property {name} should not exist" for name in body if name not in INIT_FIELDS]
    for name, fields in INIT_FIELDS.items():
        value = body.get(name)
        if fields is None or value is None:
            continue
        if not isinstance(value, dict):
            problems.append(f"{name} must be an object")
            continue
        problems += [f"property {name}.{f} should not exist" for f in value if f not in fields]
    encoding = body.get("encoding", "wav/pcm")
    if encoding not in ENCODINGS:
        problems.append(f"encoding must be one of {list(ENCODINGS)}")
    elif body.get("bit_depth", 16 if encoding == "wav/pcm" else 8) not in ENCODINGS[encoding]:
        problems.append(f"bit_depth must be one of {list(ENCODINGS[encoding])} for {encoding}")
    if body.get("sample_rate", 16000) not in SAMPLE_RATES:
        problems.append(f"sample_rate must be one of {list(SAMPLE_RATES)}")
    channels = body.get("channels", 1)
    if not isinstance(channels, int) or not 1 <= channels <= 8:
        problems.append("channels must be an integer from 1 to 8")
    if body.get("model", "solaria-1") != "solaria-1":
        problems.append("model must be one of ['solaria-1']")
    languages = (body.get("language_config") or {}).get("languages") or []
    if not isinstance(languages, list) or not set(languages) <= LANGUAGES:
        problems.append("language_config.languages must be Gladia language codes")
    endpointing = body.get("endpointing")
    if endpointing is not None and not 0.01 <= endpointing <= 10:
        problems.append("endpointing must be between 0.01 and 10")
    return problems
