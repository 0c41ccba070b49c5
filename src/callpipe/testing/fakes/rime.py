"""FakeRimeServer: Rime's JSON text-to-speech WebSocket (``/ws3`` and ``/ws2``) on 127.0.0.1.

The documented contract (https://docs.rime.ai/api-reference/coda/websockets-json,
https://docs.rime.ai/api-reference/mistv2/websockets-json, https://docs.rime.ai/docs/websockets
and https://docs.rime.ai/docs/websockets-segment):

- **Handshake.** ``Authorization: Bearer <key>`` (a wrong key: HTTP 401 with a plain-text
  body); the synthesis options are query parameters: ``speaker`` (required), ``modelId``,
  ``audioFormat``, ``samplingRate``, ``lang``, ``segment`` (``bySentence`` by default,
  ``immediate``, ``never``) and the model's own options. A bad option is refused with HTTP 400.
- **Client messages.** ``{"text", "contextId"?}`` (at most 1,000 characters),
  ``{"operation": "flush" | "clear" | "eos"}``.
- **Buffering.** Text accumulates in one buffer per socket. ``bySentence`` requests synthesis up
  to the last ``.``/``?``/``!``, ``immediate`` of whatever arrived, ``never`` only on ``flush``.
  A run is requested while another is under way is held and merged with any later request into
  one run. ``clear`` drops the buffer, not a requested run; ``eos`` requests the rest and closes
  the socket after it.
- **Server events.** Per run: ``{"type": "timestamps", "word_timestamps": {"words", "start",
  "end"}, "contextId"}`` (seconds from the run's start; only for English and Spanish, or no
  ``lang``), ``{"type": "chunk", "data": <base64 audio>, "contextId"}``, then
  ``{"type": "done", "contextId"}`` (``/ws2`` adds ``"done": true``). Events carry the newest
  ``contextId`` received when the run was requested (``null`` if that text had none). Bad input
  gets ``{"type": "error", "message"}`` and the socket stays open.

The fake speaks a tone of ``secs_per_word`` per word in ``pcm`` (16-bit) or ``mulaw``, sends a
run's timestamps before its audio (an order a client must cope with), and records what it got.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass, field
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
)
from callpipe.testing.fakes._tts import SpeechHTTPFake, speech_chunks

PATHS = ("/ws3", "/ws2")
AUDIO_FORMATS = ("pcm", "mulaw")
"""The ``audioFormat`` values the fake can produce (Rime also serves ``mp3``; refused here)."""
SEGMENTS = ("bySentence", "immediate", "never")
TIMESTAMP_LANGUAGES = ("en", "eng", "es", "spa")
SENTENCE_END = (".", "?", "!")
MAX_TEXT = 1000


def query_problem(path: str, query: dict[str, str]) -> str | None:
    """Why a handshake's query would be refused (None: accepted)."""
    if not query.get("speaker"):
        return "missing required parameter: speaker"
    fmt = query.get("audioFormat", "pcm")
    if fmt not in AUDIO_FORMATS:
        return f"audioFormat {fmt!r}: the fake serves {', '.join(AUDIO_FORMATS)}"
    rate = query.get("samplingRate", "24000")
    if not rate.isdigit() or int(rate) <= 0:
        return "samplingRate must be a positive integer"
    if urlsplit(path).path == "/ws2" and not (4000 <= int(rate) <= 44100):
        return "samplingRate must be between 4000 and 44100"
    segment = query.get("segment")
    if segment is not None and segment not in SEGMENTS:
        return f"segment must be one of {', '.join(SEGMENTS)}"
    return None


def _validate(request: Any) -> Refusal | None:
    split = urlsplit(request.path)
    if split.path not in PATHS:
        return Refusal(404, "Not Found\n")
    query = {k: v[-1] for k, v in parse_qs(split.query).items()}
    problem = query_problem(request.path, query)
    return Refusal(400, problem + "\n") if problem else None


@dataclass
class _Session:
    """One socket: its options, the text buffer and the runs requested."""

    ws: ServerConnection
    legacy: bool
    query: dict[str, str]
    buffer: str = ""
    context_id: str | None = None
    requested: str = ""
    requested_id: str | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False

    @property
    def segment(self) -> str:
        return self.query.get("segment") or "bySentence"

    def request(self, text: str) -> None:
        """Ask for a run of ``text`` (merged with one already waiting)."""
        self.requested += text
        if text.strip():
            self.requested_id = self.context_id
            self.wake.set()


class FakeRimeServer(DropsMidAudio, ServedWebsocketFake):
    """See the module docstring. ``async with FakeRimeServer() as server: server.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
        split_punctuation: bool = False,
    ) -> None:
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.split_punctuation = split_punctuation
        """Send a sentence's final punctuation as a word of its own (as Rime's Mist v2 does)."""
        self.messages: list[dict[str, Any]] = []
        self.queries: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.events: list[dict[str, Any]] = []
        """Everything sent to clients."""
        self.runs: list[tuple[str, str | None]] = []
        """(text, contextId) of each synthesis run."""
        self.connections = 0
        self.error_next: str | None = None
        """Answer the next client message with this error instead."""
        self.drop_after_chunks: int | None = None
        """Abort the socket (no close frame) once this many chunks were sent, once."""
        self._chunks_sent = 0
        self.skip_done = 0
        """Leave out the ``done`` of this many next runs (a provider that never finishes)."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Bearer ")],
            validate=_validate,
            unauthorized=Refusal(401, "invalid api key\n"),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes

    async def _send(self, session: _Session, event: dict[str, Any]) -> None:
        self.events.append(event)
        await session.ws.send(json.dumps(event))

    async def _error(self, session: _Session, message: str) -> None:
        await self._send(session, {"type": "error", "message": message})

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        split = urlsplit(ws.request.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self.queries.append(query)
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        session = _Session(ws, legacy=split.path == "/ws2", query=query)
        synth = asyncio.get_running_loop().create_task(self._synthesize(session))
        try:
            async for raw in ws:
                if not await self._receive(session, raw):
                    break
            if session.closing:
                await synth  # eos: the rest is spoken, then the socket closes
                await ws.close()
        except ConnectionClosed:
            pass
        finally:
            synth.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await synth

    async def _receive(self, session: _Session, raw: str | bytes) -> bool:
        """Handle one client message; False once ``eos`` ends the input."""
        try:
            message = json.loads(raw)
        except ValueError:
            await self._error(session, "malformed message: not JSON")
            return True
        if not isinstance(message, dict):
            await self._error(session, "malformed message: expected an object")
            return True
        self.messages.append(message)
        if self.error_next is not None:
            error, self.error_next = self.error_next, None
            await self._error(session, error)
            return True
        operation = message.get("operation")
        if operation is not None:
            if operation == "clear":
                session.buffer = ""
            elif operation == "flush":
                session.request(session.buffer)
                session.buffer = ""
            elif operation == "eos":
                session.request(session.buffer)
                session.buffer = ""
                session.closing = True
                session.wake.set()
                return False
            else:
                await self._error(session, f"unknown operation: {operation}")
            return True
        text = message.get("text")
        context_id = message.get("contextId")
        if not isinstance(text, str) or (
            context_id is not None and not isinstance(context_id, str)
        ):
            await self._error(session, "malformed message: text must be a string")
            return True
        if len(text) > MAX_TEXT:
            await self._error(session, f"text longer than {MAX_TEXT} characters")
            return True
        session.context_id = context_id
        session.buffer += text
        if session.segment == "immediate":
            session.request(session.buffer)
            session.buffer = ""
        elif session.segment == "bySentence":
            cut = max(session.buffer.rfind(mark) for mark in SENTENCE_END) + 1
            if cut > 0:
                session.request(session.buffer[:cut])
                session.buffer = session.buffer[cut:]
        return True

    async def _synthesize(self, session: _Session) -> None:
        while True:
            if not session.requested.strip():
                if session.closing:
                    return
                await session.wake.wait()
                session.wake.clear()
                continue
            text, context_id = session.requested, session.requested_id
            session.requested = ""
            await self._run(session, text, context_id)

    def _word_list(self, text: str) -> list[str]:
        words = text.split()
        if not self.split_punctuation:
            return words
        split: list[str] = []
        for word in words:
            if len(word) > 1 and word[-1] in SENTENCE_END:
                split += [word[:-1], word[-1]]
            else:
                split.append(word)
        return split

    async def _run(self, session: _Session, text: str, context_id: str | None) -> None:
        self.runs.append((text, context_id))
        query = session.query
        rate = int(query.get("samplingRate", "24000"))
        spoken = text.split()
        if query.get("lang", "en") in TIMESTAMP_LANGUAGES:
            words = self._word_list(text)
            # Punctuation split off a word takes no time of its own.
            times: list[float] = []
            t = 0.0
            for word in words:
                times.append(t)
                if any(c.isalnum() for c in word):
                    t += self.secs_per_word
            ends = [
                times[i + 1] if i + 1 < len(words) else t
                for i in range(len(words))  # each word ends where the next starts
            ]
            await self._send(
                session,
                {
                    "type": "timestamps",
                    "word_timestamps": {"words": words, "start": times, "end": ends},
                    "contextId": context_id,
                },
            )
        for audio in speech_chunks(len(spoken) * self.secs_per_word, rate, self.chunk_secs):
            if self._drop_due(session.ws):
                return
            self._chunks_sent += 1
            if query.get("audioFormat") == "mulaw":
                audio = pcm_to_ulaw(audio)
            await self._send(
                session,
                {
                    "type": "chunk",
                    "data": base64.b64encode(audio).decode(),
                    "contextId": context_id,
                },
            )
            await asyncio.sleep(self.chunk_delay)
        if self.skip_done:
            self.skip_done -= 1
            return
        done: dict[str, Any] = {"type": "done", "contextId": context_id}
        if session.legacy:
            done["done"] = True
        await self._send(session, done)


# ---------------------------------------------------------------------- HTTP
#
# Rime's streaming HTTP endpoint, ``POST /v1/rime-tts`` (https://docs.rime.ai/api-reference/
# coda/http and .../mistv2/http): ``Authorization: Bearer <key>``; a JSON body of ``text`` and
# ``speaker`` (required), ``modelId``, ``lang``, ``samplingRate`` and the model's options; the
# audio streams back headerless in the ``Accept`` type: ``audio/L16`` (16-bit PCM; ``audio/pcm``
# is its deprecated alias) or ``audio/PCMU`` (μ-law; alias ``audio/x-mulaw``) here, Rime also
# serving Opus, MP3 and WAV. Errors have plain-text bodies (400 for a bad request, 401 for a bad
# key).

HTTP_AUDIO = {
    "audio/L16": "pcm",
    "audio/pcm": "pcm",
    "audio/PCMU": "mulaw",
    "audio/x-mulaw": "mulaw",
}


class FakeRimeHTTPServer(SpeechHTTPFake):
    """Rime's ``POST /v1/rime-tts`` on 127.0.0.1 (see the comment above this class)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__("/v1/rime-tts", self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import PlainTextResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return PlainTextResponse("invalid api key", 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid JSON body", 400)
        self.requests.append(body)
        if not isinstance(body, dict) or not str(body.get("text") or "").strip():
            return PlainTextResponse("text is required", 400)
        if not body.get("speaker"):
            return PlainTextResponse("speaker is required", 400)
        fmt = HTTP_AUDIO.get(headers.get("accept", ""))
        if fmt is None:
            return PlainTextResponse(f"the fake serves {', '.join(HTTP_AUDIO)}", 400)
        rate = body.get("samplingRate", 24000)
        if not isinstance(rate, int) or rate <= 0:
            return PlainTextResponse("samplingRate must be a positive integer", 400)
        status = self._next_status()
        if status != 200:
            return PlainTextResponse(f"scripted error {status}", status)
        chunks = speech_chunks(
            len(str(body["text"]).split()) * self.secs_per_word, rate, self.chunk_secs
        )

        async def audio() -> Any:
            for chunk in chunks:
                yield pcm_to_ulaw(chunk) if fmt == "mulaw" else chunk
                await asyncio.sleep(self.chunk_delay)

        return StreamingResponse(audio(), media_type=headers["accept"])
