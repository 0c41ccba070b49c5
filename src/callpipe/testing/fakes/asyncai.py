"""FakeAsyncAIServer and FakeAsyncAIHTTPServer: Async's (async.com) text-to-speech socket and
its streaming HTTP endpoint, on 127.0.0.1.

**Socket** (``/text_to_speech/websocket/ws``). The key and the API version are query parameters
(``?api_key=<key>&version=v1``); a wrong key gets HTTP 401, a missing ``version`` HTTP 400. The
first message configures the session: ``{"model_id", "voice": {"mode": "id", "id"},
"output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate"}, "language"}``
(a bad one is answered with ``{"error": ...}`` and the socket is closed with code 1008). Then
the client sends ``{"transcript", "context_id", "force"}``: the text is added to that
context's buffer, and ``force: true`` speaks the buffer at once (text ending a sentence is
spoken too). Each piece spoken comes as ``{"audio": <base64 16-bit PCM>, "context_id"}``
messages (a tone of ``secs_per_word`` per word, at the session's rate). ``{"context_id",
"close_context": true}`` stops that context (text not spoken yet is dropped) and is answered
with ``{"final": true, "context_id"}``; a message with no ``context_id`` (the keepalive
``{"transcript": " "}``) does nothing; ``{"terminate": true}`` closes the socket.

**HTTP** (``POST /text_to_speech/streaming``). Headers ``x-api-key`` and ``version``; a JSON
body of ``model_id``, ``transcript``, ``voice``, ``output_format`` (as above) and
``language``; the answer streams the raw PCM.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
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
from callpipe.testing.fakes._tts import SpeechHTTPFake, paced, speech_chunks

WS_PATH = "/text_to_speech/websocket/ws"
HTTP_PATH = "/text_to_speech/streaming"
VERSIONS = ("v1",)
ENCODINGS = ("pcm_s16le",)
CONTAINERS = ("raw",)
SENTENCE_ENDS = (".", "!", "?")


def format_problem(message: dict[str, Any]) -> str | None:
    """Why an init message (or an HTTP body) would be refused (None: accepted)."""
    if not isinstance(message.get("model_id"), str) or not message["model_id"]:
        return "model_id is required"
    voice = message.get("voice")
    if not isinstance(voice, dict) or voice.get("mode") != "id" or not voice.get("id"):
        return "voice must be {'mode': 'id', 'id': <voice id>}"
    output = message.get("output_format")
    if not isinstance(output, dict):
        return "output_format is required"
    if output.get("container") not in CONTAINERS:
        return f"the fake serves container {CONTAINERS}"
    if output.get("encoding") not in ENCODINGS:
        return f"the fake serves encoding {ENCODINGS}"
    rate = output.get("sample_rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        return "output_format.sample_rate must be a positive integer"
    language = message.get("language")
    if language is not None and not isinstance(language, str):
        return "language must be a string or null"
    return None


def _validate(request: Any) -> Refusal | None:
    split = urlsplit(request.path)
    if split.path != WS_PATH:
        return Refusal(404, "Not Found\n")
    version = parse_qs(split.query).get("version", [""])[-1]
    if version not in VERSIONS:
        return Refusal(400, json.dumps({"detail": "version query parameter is required"}))
    return None


@dataclass
class _Session:
    ws: ServerConnection
    rate: int = 0
    buffers: dict[str, str] = field(default_factory=dict)
    queue: deque[tuple[str, str]] = field(default_factory=deque)
    closed: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class FakeAsyncAIServer(ServedWebsocketFake):
    """See the module docstring. ``async with FakeAsyncAIServer() as fake: fake.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        """Seconds between two audio messages (generation time)."""
        self.queries: list[dict[str, str]] = []
        self.inits: list[dict[str, Any]] = []
        """Each session's first message."""
        self.messages: list[dict[str, Any]] = []
        """Every later client message."""
        self.spoken: list[tuple[str, str]] = []
        """(context_id, text) of each piece spoken, in order."""
        self.sent: list[dict[str, Any]] = []
        """Every message sent to clients."""
        self.connections = 0
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("query", "api_key", "")],
            validate=_validate,
            unauthorized=Refusal(401, json.dumps({"detail": "Invalid API key"})),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes

    async def _send(self, session: _Session, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await session.ws.send(json.dumps(message))

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        query = {k: v[-1] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        self.queries.append(query)
        session = _Session(ws)
        speaker = asyncio.get_running_loop().create_task(self._speak(session))
        try:
            init = json_object(await ws.recv())
            problem = "the first message must be a JSON object" if init is None else None
            if init is not None:
                self.inits.append(init)
                problem = format_problem(init)
            if problem is not None or init is None:
                await self._send(session, {"error": problem})
                await ws.close(1008, "invalid init message")
                return
            session.rate = int(init["output_format"]["sample_rate"])
            async for raw in ws:
                message = json_object(raw)
                if message is None:
                    await self._send(session, {"error": "messages must be JSON objects"})
                    continue
                self.messages.append(message)
                if message.get("terminate") is True:
                    await ws.close()
                    return
                await self._receive(session, message)
        except ConnectionClosed:
            pass
        finally:
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await speaker

    async def _receive(self, session: _Session, message: dict[str, Any]) -> None:
        context_id = message.get("context_id")
        if not isinstance(context_id, str) or not context_id:
            return  # a keepalive
        if message.get("close_context") is True:
            session.closed.add(context_id)
            session.buffers.pop(context_id, None)
            await self._send(session, {"final": True, "context_id": context_id})
            return
        if context_id in session.closed:
            return
        text = session.buffers.get(context_id, "") + str(message.get("transcript") or "")
        if message.get("force") is True or text.rstrip().endswith(SENTENCE_ENDS):
            session.buffers.pop(context_id, None)
            if text.strip():
                session.queue.append((context_id, text.strip()))
                session.wake.set()
        else:
            session.buffers[context_id] = text

    async def _speak(self, session: _Session) -> None:
        while True:
            await session.wake.wait()
            session.wake.clear()
            while session.queue:
                context_id, text = session.queue.popleft()
                if context_id in session.closed:
                    continue
                self.spoken.append((context_id, text))
                secs = len(text.split()) * self.secs_per_word
                for chunk in speech_chunks(secs, session.rate, self.chunk_secs):
                    if context_id in session.closed:
                        break
                    audio = base64.b64encode(chunk).decode()
                    await self._send(session, {"audio": audio, "context_id": context_id})
                    await asyncio.sleep(self.chunk_delay)


class FakeAsyncAIHTTPServer(SpeechHTTPFake):
    """Async's ``POST /text_to_speech/streaming`` (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(HTTP_PATH, self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        if self.api_key is not None and headers.get("x-api-key") != self.api_key:
            return JSONResponse({"detail": "Invalid API key"}, 401)
        if headers.get("version") not in VERSIONS:
            return JSONResponse({"detail": "version header is required"}, 400)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"detail": "invalid JSON body"}, 400)
        self.requests.append(body)
        if not isinstance(body, dict):
            return JSONResponse({"detail": "expected a JSON object"}, 400)
        problem = format_problem(body)
        if problem is None and not str(body.get("transcript") or "").strip():
            problem = "transcript is required"
        if problem is not None:
            return JSONResponse({"detail": problem}, 400)
        status = self._next_status()
        if status != 200:
            return JSONResponse({"detail": f"scripted error {status}"}, status)
        rate = int(body["output_format"]["sample_rate"])
        secs = len(str(body["transcript"]).split()) * self.secs_per_word
        chunks = speech_chunks(secs, rate, self.chunk_secs)

        return StreamingResponse(
            paced(chunks, self.chunk_delay), media_type="application/octet-stream"
        )
