"""FakeNeuphonicServer and FakeNeuphonicHTTPServer: Neuphonic's text-to-speech socket
(``/speak/{lang_code}``) and its server-sent-events endpoint (``POST /sse/speak/{lang_code}``)
on 127.0.0.1.

The documented contract (https://docs.neuphonic.com/api-reference/tts/websocket,
https://docs.neuphonic.com/api-reference/tts/sse-generator; the models of ``pyneuphonic`` and
what ``@neuphonic/neuphonic-js`` reads):

- **Key.** An ``x-api-key`` header (any case) or an ``api_key`` query parameter; a wrong one is
  refused with 403 (the socket's handshake too).
- **Options.** ``speed``, ``temperature`` (0 to 1), ``lang_code``, ``voice_id``,
  ``sampling_rate`` (8000, 16000, 22050 or 24000; 24000 by default), ``encoding``
  (``pcm_linear`` by default, or ``pcm_mulaw``), ``ipa_key``: query parameters of the socket,
  fields of the HTTP body next to ``text``. Bad ones: HTTP 422 (a refused handshake).
- **Socket.** The client sends ``{"text": ...}`` (the docs' form; both SDKs also send bare
  text as a text frame, taken as the same); text accumulates until a ``<STOP>``, which
  makes the server speak what it holds. Each answer is ``{"data": {"audio": <base64>, "text",
  "sampling_rate"}}`` (about a word each); the last one of a passage adds ``"stop": true``
  (with empty audio when the passage had none). A binary frame, or a JSON object without a
  string ``text``, gets ``{"status_code": 400, "errors": [...]}``; the socket stays open.
- **SSE.** A 200 answer streams ``event: message`` / ``data: {"status_code": 200, "data":
  {...}}`` events of the same shape, then ends; a failure mid-stream is ``event: error`` with
  ``{"status_code", "errors"}``.

The fake speaks a tone of ``secs_per_word`` per word and records what it got.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
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
from callpipe.testing.fakes._tts import SpeechHTTPFake
from callpipe.testing.fakes.openai import tone_pcm

SAMPLE_RATES = (8000, 16000, 22050, 24000)
ENCODINGS = ("pcm_linear", "pcm_mulaw")
STOP = "<STOP>"
SPEAK_PREFIX = "/speak/"


def options_problem(options: dict[str, Any]) -> str | None:
    """Why Neuphonic would refuse these options (None: accepted); values may be strings (a
    query) or JSON values (a body)."""
    rate = options.get("sampling_rate", 24000)
    try:
        if int(rate) not in SAMPLE_RATES:
            return f"sampling_rate must be one of {', '.join(map(str, SAMPLE_RATES))}"
    except (TypeError, ValueError):
        return "sampling_rate must be an integer"
    encoding = options.get("encoding", "pcm_linear")
    if encoding not in ENCODINGS:
        return f"encoding must be one of {', '.join(ENCODINGS)}"
    for name, low, high in (("speed", 0.0, 10.0), ("temperature", 0.0, 1.0)):
        if name in options and options[name] is not None:
            try:
                value = float(options[name])
            except (TypeError, ValueError):
                return f"{name} must be a number"
            if not low <= value <= high:
                return f"{name} must be between {low} and {high}"
    return None


def _validate(request: Any) -> Refusal | None:
    split = urlsplit(request.path)
    if not split.path.startswith(SPEAK_PREFIX) or len(split.path) <= len(SPEAK_PREFIX):
        return Refusal(404, "Not Found\n")
    query = {k: v[-1] for k, v in parse_qs(split.query).items()}
    problem = options_problem(query)
    return Refusal(422, json.dumps({"detail": problem})) if problem else None


class _Speaker:
    """What both fakes share: a passage's audio as Neuphonic's ``data`` payloads."""

    secs_per_word: float
    chunk_delay: float

    def payloads(self, text: str, options: dict[str, Any]) -> list[dict[str, Any]]:
        """One ``data`` payload per word of ``text`` (none for a passage without words)."""
        rate = int(options.get("sampling_rate", 24000))
        mulaw = options.get("encoding") == "pcm_mulaw"
        out = []
        for word in text.split():
            pcm = tone_pcm(self.secs_per_word, rate)
            audio = pcm_to_ulaw(pcm) if mulaw else pcm
            out.append(
                {
                    "audio": base64.b64encode(audio).decode(),
                    "text": word + " ",
                    "sampling_rate": rate,
                }
            )
        return out


class FakeNeuphonicServer(_Speaker, DropsMidAudio, ServedWebsocketFake):
    """Neuphonic's ``/speak/{lang_code}`` socket (see the module docstring).
    ``async with FakeNeuphonicServer() as server: server.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_delay: float = 0.0,
    ) -> None:
        self.secs_per_word = secs_per_word
        self.chunk_delay = chunk_delay
        self.messages: list[dict[str, Any] | str] = []
        """Each text message: its JSON object, or the string sent bare."""
        self.queries: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.passages: list[str] = []
        """The text of each passage spoken (up to its ``<STOP>``)."""
        self.events: list[dict[str, Any]] = []
        """Everything sent to clients."""
        self.connections = 0
        self.closed = 0
        """Sockets the client closed."""
        self.drop_after_chunks: int | None = None
        """Abort the socket (no close frame) once this many chunks were sent, once."""
        self._chunks_sent = 0
        self.skip_stop = 0
        """Leave out the ``stop`` of this many next passages (a provider that never ends)."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "x-api-key", ""), ("query", "api_key", "")],
            validate=_validate,
            unauthorized=Refusal(403, json.dumps({"detail": "Invalid API key"})),
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes

    async def _send(self, ws: ServerConnection, event: dict[str, Any]) -> None:
        self.events.append(event)
        await ws.send(json.dumps(event))

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        query = {k: v[-1] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        self.queries.append(query)
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        passages: asyncio.Queue[str] = asyncio.Queue()
        synth = asyncio.get_running_loop().create_task(self._synthesize(ws, query, passages))
        buffer = ""
        try:
            async for raw in ws:
                message = json_object(raw)
                if message is None and isinstance(raw, str):
                    text: Any = raw  # the SDKs' bare-text form
                    self.messages.append(raw)
                elif message is not None and isinstance(message.get("text"), str):
                    text = message["text"]
                    self.messages.append(message)
                else:
                    await self._send(
                        ws, {"status_code": 400, "errors": ['expected {"text": <string>}']}
                    )
                    continue
                buffer += text
                while STOP in buffer:
                    passage, buffer = buffer.split(STOP, 1)
                    passages.put_nowait(passage)
            self.closed += 1
        except ConnectionClosed:
            pass
        finally:
            synth.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await synth

    async def _synthesize(
        self, ws: ServerConnection, query: dict[str, str], passages: asyncio.Queue[str]
    ) -> None:
        while True:
            passage = await passages.get()
            self.passages.append(passage)
            payloads = self.payloads(passage, query)
            if not payloads:
                payloads = [
                    {
                        "audio": "",
                        "text": "",
                        "sampling_rate": int(query.get("sampling_rate", 24000)),
                    }
                ]
            for i, payload in enumerate(payloads):
                if self._drop_due(ws):
                    return
                last = i == len(payloads) - 1
                if last and self.skip_stop:
                    self.skip_stop -= 1
                elif last:
                    payload["stop"] = True
                if payload["audio"]:
                    self._chunks_sent += 1
                await self._send(ws, {"data": payload})
                await asyncio.sleep(self.chunk_delay)


class FakeNeuphonicHTTPServer(_Speaker, SpeechHTTPFake):
    """Neuphonic's ``POST /sse/speak/{lang_code}`` (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(
            "/sse/speak/{lang_code}", self._speak, api_key=api_key, secs_per_word=secs_per_word
        )
        self.chunk_delay = chunk_delay
        self.paths: list[str] = []
        self.error_after: int | None = None
        """Send an ``event: error`` after this many audio events of the next request."""

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        self.paths.append(request.url.path)
        keys = (headers.get("x-api-key"), request.query_params.get("api_key"))
        if self.api_key is not None and self.api_key not in keys:
            return JSONResponse({"detail": "Invalid API key"}, 403)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"detail": "invalid JSON body"}, 422)
        self.requests.append(body)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return JSONResponse({"detail": "text is required"}, 422)
        problem = options_problem(body)
        if problem:
            return JSONResponse({"detail": problem}, 422)
        status = self._next_status()
        if status != 200:
            return JSONResponse({"detail": f"scripted error {status}"}, status)
        payloads = self.payloads(body["text"], body)
        error_after, self.error_after = self.error_after, None

        async def events() -> Any:
            for i, payload in enumerate(payloads):
                if error_after is not None and i == error_after:
                    failure = {"status_code": 500, "errors": ["synthesis failed"]}
                    yield f"event: error\ndata: {json.dumps(failure)}\n\n"
                    return
                event = {"status_code": 200, "data": payload}
                yield f"event: message\ndata: {json.dumps(event)}\n\n"
                await asyncio.sleep(self.chunk_delay)

        return StreamingResponse(events(), media_type="text/event-stream")
