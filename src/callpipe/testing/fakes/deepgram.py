"""FakeDeepgramServer: Deepgram's live transcription WebSocket (``/v1/listen``) on 127.0.0.1.

Query options as documented (``encoding=linear16|mulaw``, ``sample_rate``, ``channels``,
``interim_results``, ``endpointing`` in ms, repeated ``keyterm=…`` parameters, ``vad_events``,
``utterance_end_ms``, …); the key in ``Authorization: Token <key>`` (or ``Bearer`` for temporary
tokens). Refusals are as Deepgram sends them: HTTP 400/401 with the reason in the ``dg-error``
header and a JSON body ``{"err_code", "err_msg", "request_id"}``; unknown paths get 404.
Stream errors arrive as close frames: ``1008 DATA-0000`` (audio that cannot be decoded),
``1011 NET-0001`` (no audio or message within ``idle_timeout_secs``); :meth:`close_next` scripts
any close.
The client streams binary audio and may send ``{"type": "KeepAlive"}``, ``{"type":
"Finalize"}`` and ``{"type": "CloseStream"}``. The server sends ``Results`` messages::

    {"type": "Results", "channel_index": [0, 1], "duration", "start", "is_final",
     "speech_final", "from_finalize", "channel": {"alternatives": [{"transcript", "confidence",
     "words": []}]}, "metadata": {"request_id", "model_info": {}}}

(each ``words`` entry ``{"word", "start", "end", "confidence", "punctuated_word"}``), and
``SpeechStarted`` / ``UtteranceEnd`` messages when asked for. ``CloseStream`` is answered as
Deepgram documents it: the final result of the audio still held, then a ``Metadata`` message,
then the server closes the socket. ``close_stream_delay_secs`` delays that answer (Deepgram
takes a moment to finish transcribing); ``answer_close_stream = False`` ignores the request (a
server that never answers).

The fake "hears" speech by energy: loud audio opens an utterance, interim results follow every
``interim_secs`` of speech (the first words of the next scripted transcript), and
``endpointing`` ms of quiet — or a ``Finalize`` — yields the final result with the whole
scripted transcript (``transcripts``; ``"hello"`` when empty). Time is counted in received
audio, not wall-clock time, so results are deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal, ServedWebsocketFake
from callpipe.testing.fakes._stt import Hearing

ENCODINGS = (
    "linear16",
    "linear32",
    "flac",
    "alaw",
    "mulaw",
    "amr-nb",
    "amr-wb",
    "opus",
    "speex",
    "g729",
)
"""Encodings the live endpoint documents (raw ones need ``sample_rate``)."""

KEYTERM_MODELS = ("nova-3",)
"""Keyterm prompting is documented for Nova-3 models only."""

MODEL_UUID = "00000000-0000-4000-8000-00000000fa4e"


def _refusal(status: int, err_code: str, message: str) -> Refusal:
    body = {"err_code": err_code, "err_msg": message, "request_id": uuid.uuid4().hex}
    return Refusal(status, json.dumps(body), {"dg-error": message})


def _validate(request: Any) -> Refusal | None:
    """Refuse options the live endpoint refuses, the way it does (HTTP 400 + ``dg-error``)."""
    query = parse_qs(urlsplit(request.path).query)
    encoding = query.get("encoding", [None])[-1]
    if encoding is not None and encoding not in ENCODINGS:
        return _refusal(400, "Bad Request", f"Invalid query string. Unknown encoding: {encoding}")
    if encoding in ("linear16", "mulaw", "alaw") and "sample_rate" not in query:
        return _refusal(400, "Bad Request", "sample_rate is required with a raw encoding")
    model = query.get("model", ["base"])[-1]
    if query.get("keyterm") and not model.startswith(KEYTERM_MODELS):
        return _refusal(400, "Bad Request", "Keyterm Prompting is only available for Nova-3")
    return None


class FakeDeepgramServer(ServedWebsocketFake):
    """See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        energy_threshold: float = 300.0,
        interim_secs: float = 0.25,
        secs_per_word: float = 0.3,
        idle_timeout_secs: float = 10.0,
    ) -> None:
        self.energy_threshold = energy_threshold
        self.interim_secs = interim_secs
        self.secs_per_word = secs_per_word
        self.transcripts: deque[str] = deque()
        self.results: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        """``SpeechStarted`` / ``UtteranceEnd`` messages sent."""
        self.queries: list[dict[str, str]] = []
        """Each connection's query, the last value of each key (see ``query_lists``)."""
        self.query_lists: list[dict[str, list[str]]] = []
        """Each connection's query with every value of repeated keys (``keyterm``)."""
        self.idle_timeout_secs = idle_timeout_secs
        self._close_next: tuple[int, str] | None = None
        self.audio_bytes = 0
        self.audio = bytearray()
        """Every audio byte received (as sent: μ-law bytes for ``encoding=mulaw``)."""
        self.keepalives = 0
        self.finalizes = 0
        self.audio_at_finalize: list[int] = []
        """Audio bytes received when each ``Finalize`` arrived."""
        self.close_streams = 0
        self.connections = 0
        self.drop_after_results: int | None = None
        self.close_stream_delay_secs = 0.0
        """Seconds before ``CloseStream`` is answered."""
        self.answer_close_stream = True
        """False: ``CloseStream`` is counted but never answered, and the socket stays open."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Token "), ("header", "Authorization", "Bearer ")],
            path="/v1/listen",
            validate=_validate,
            unauthorized=_refusal(401, "INVALID_AUTH", "Invalid credentials."),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes
        """Statuses for the next handshakes (``fake.fail_handshakes.append(429)``)."""

    @property
    def max_connections(self) -> int | None:
        """Refuse handshakes (HTTP 503) once this many were accepted (simulates an outage)."""
        return self._server.max_connections

    @max_connections.setter
    def max_connections(self, value: int | None) -> None:
        self._server.max_connections = value

    def close_next(self, code: int, reason: str) -> None:
        """Close the socket with this code and reason on the next message (a stream error)."""
        self._close_next = (code, reason)

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        lists = parse_qs(urlsplit(ws.request.path).query)
        self.query_lists.append(lists)
        query = {k: v[-1] for k, v in lists.items()}
        self.queries.append(query)
        session = _Session(self, ws, query)
        with contextlib.suppress(ConnectionClosed):
            while True:
                try:
                    message = await asyncio.wait_for(ws.recv(), self.idle_timeout_secs)
                except TimeoutError:
                    await ws.close(1011, "NET-0001")
                    return
                if self._close_next is not None:
                    code, reason = self._close_next
                    self._close_next = None
                    await ws.close(code, reason)
                    return
                if isinstance(message, bytes):
                    self.audio_bytes += len(message)
                    self.audio += message
                    await session.audio(message)
                    continue
                try:
                    kind = json.loads(message).get("type")
                except (ValueError, AttributeError):
                    await ws.close(1008, "DATA-0000")
                    return
                if kind == "KeepAlive":
                    self.keepalives += 1
                elif kind == "Finalize":
                    self.finalizes += 1
                    self.audio_at_finalize.append(self.audio_bytes)
                    await session.finalize(from_finalize=True)
                elif kind == "CloseStream":
                    self.close_streams += 1
                    if not self.answer_close_stream:
                        continue
                    if self.close_stream_delay_secs:
                        await asyncio.sleep(self.close_stream_delay_secs)
                    await session.finalize(from_finalize=True)
                    await ws.send(
                        json.dumps(
                            {
                                "type": "Metadata",
                                "transaction_key": "deprecated",
                                "request_id": session.request_id,
                                "sha256": hashlib.sha256(session.request_id.encode()).hexdigest(),
                                "created": datetime.now(UTC).isoformat(),
                                "duration": round(session.t, 3),
                                "channels": 1,
                                "models": [MODEL_UUID],
                                "model_info": {
                                    MODEL_UUID: {
                                        "name": "general-nova-3",
                                        "version": "fake",
                                        "arch": "nova-3",
                                    }
                                },
                            }
                        )
                    )
                    await ws.close()
                    return


class _Session(Hearing):
    """Per-connection state: audio clock, utterance boundaries, result sending."""

    def __init__(self, fake: FakeDeepgramServer, ws: ServerConnection, query: dict[str, str]):
        self.encoding = query.get("encoding", "linear16")
        super().__init__(
            rate=int(query.get("sample_rate", "16000")),
            threshold=fake.energy_threshold,
            ulaw=self.encoding == "mulaw",
        )
        self.fake = fake
        self.ws = ws
        self.interim_results = query.get("interim_results", "false") == "true"
        self.vad_events = query.get("vad_events", "false") == "true"
        utterance_end = query.get("utterance_end_ms")
        self.utterance_end = int(utterance_end) / 1000 if utterance_end else None
        self.last_word_end: float | None = None
        endpointing = query.get("endpointing", "10")
        self.endpointing = 0.01 if endpointing in ("true", "false") else int(endpointing) / 1000
        self.request_id = uuid.uuid4().hex
        self.sent = 0

    async def speech_started(self) -> None:
        if self.vad_events:
            await self._event(
                {"type": "SpeechStarted", "channel": [0], "timestamp": round(self.start or 0.0, 3)}
            )

    async def audio(self, data: bytes) -> None:
        if self.encoding == "linear16" and len(data) % 2:
            await self.ws.close(1008, "DATA-0000")
            return
        fake = self.fake
        if await self.hear(data):
            if self.interim_results and self.interim_due(fake.interim_secs):
                scripted = fake.transcripts[0] if fake.transcripts else "hello"
                text = self.first_words(scripted, fake.secs_per_word)
                await self._send(text, final=False, from_finalize=False)
        elif self.quiet_for(self.endpointing):
            await self.finalize(from_finalize=False)
        elif (
            self.utterance_end is not None
            and self.last_word_end is not None
            and self.t - self.last_word_end >= self.utterance_end
        ):
            end, self.last_word_end = self.last_word_end, None
            await self._event(
                {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(end, 3)}
            )

    async def _event(self, message: dict[str, Any]) -> None:
        self.fake.events.append(message)
        await self.ws.send(json.dumps(message))

    async def finalize(self, *, from_finalize: bool) -> None:
        if self.start is None:
            return
        text = self.fake.transcripts.popleft() if self.fake.transcripts else "hello"
        await self._send(text, final=True, from_finalize=from_finalize)
        self.start = None

    async def _send(self, text: str, *, final: bool, from_finalize: bool) -> None:
        fake = self.fake
        if fake.drop_after_results is not None and self.sent >= fake.drop_after_results:
            fake.drop_after_results = None
            self.ws.transport.abort()
            return
        start = self.start or 0.0
        tokens = text.split()
        step = (self.t - start) / max(1, len(tokens))
        words = [
            {
                "word": token.strip(".,?!").lower(),
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
                "confidence": 0.98,
                "punctuated_word": token,
            }
            for i, token in enumerate(tokens)
        ]
        if final:
            self.last_word_end = self.t
        result = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(self.t - start, 3),
            "start": round(start, 3),
            "is_final": final,
            "speech_final": final and not from_finalize,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.98, "words": words}]},
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
                "model_uuid": MODEL_UUID,
            },
        }
        fake.results.append(result)
        self.sent += 1
        await self.ws.send(json.dumps(result))
