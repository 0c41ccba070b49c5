"""FakeGeminiLiveServer: the Gemini Live API (``BidiGenerateContent``) on a loopback WebSocket.

The contract followed (Google's Live API WebSockets reference and the ``google-genai`` SDK's
``LiveClientMessage`` / ``LiveServerMessage`` models, which the contract test checks every
message against):

- **Handshake.** ``/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent``
  (also under ``v1alpha`` and ``v1``, which the SDK uses), the key in ``?key=`` or the
  ``x-goog-api-key`` header (as the SDK sends it). The upgrade is always accepted; a wrong key
  closes the socket after the first message with code 1007 and Gemini's reason ``API key not
  valid. Please pass a valid API key.``
- **Messages.** JSON objects with exactly one of ``setup``, ``clientContent``, ``realtimeInput``,
  ``toolResponse`` (proto JSON: camelCase or snake_case keys). The server's messages are JSON in
  binary frames, as Gemini sends them. Anything else (bad JSON, no known field, a ``setup`` that
  is not first or has no ``models/...`` model, a first message that is not a ``setup``) closes
  the socket with 1007 ``Request contains an invalid argument.``
- **Setup.** Answered ``{"setupComplete": {}}``. With ``sessionResumption`` a
  ``sessionResumptionUpdate`` (a new handle) follows, and again after each turn; a setup
  carrying a handle this fake issued resumes that session's history.
- **Caller audio.** ``realtimeInput.audio`` (or the older ``mediaChunks``), base64 PCM at the
  ``rate=`` of its ``mimeType``. With automatic activity detection (the default) audio louder
  than ``speech_threshold`` (peak sample) starts the caller's speech, which interrupts a reply
  being generated (``serverContent.interrupted``, then ``turnComplete``);
  ``silenceDurationMs`` of quiet after it (from the setup, default 500) ends the turn: the
  input transcription (the next of ``transcripts``, word by word in ``inputTranscription``),
  then the reply. With ``automaticActivityDetection.disabled``, ``activityStart`` /
  ``activityEnd`` mark the turn instead. ``realtimeInput.text`` (not blank) is a turn of its own.
- **Client content.** ``clientContent.turns`` join the history; ``turnComplete: true`` asks for a
  reply.
- **Replies.** The next of ``replies`` (a :class:`LiveReply`; "Okay." when none is queued): a
  function call sends ``toolCall`` and waits for the ``toolResponse`` answering every call id
  (an unknown id closes the socket with 1008 ``Requested entity was not found.``), then plays
  the next reply; the caller speaking first withdraws the calls (``toolCallCancellation``: a
  late response for them is refused the same way). Speech is ``serverContent.modelTurn`` audio
  (24 kHz PCM tone in ``chunk_ms`` pieces, ``pace_secs`` apart), each followed by its words in
  ``outputTranscription``, then ``generationComplete`` and ``turnComplete`` with
  ``usageMetadata``.

With ``echo`` set (``callpipe fakes`` sets it) a turn is heard as the next transcript ("hello"
when none is queued) and an unscripted reply says "You said: …".

Every client message received is in ``received`` (after the key check); every server message
in ``sent``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal
from callpipe.testing.fakes._speech_to_speech import (
    SpeechGate,
    SpeechToSpeechFake,
    is_loud,
    reply_chunks,
)
from callpipe.testing.fakes.openai import tone_pcm

API_VERSIONS = ("v1beta", "v1alpha", "v1")
"""``v1beta`` is the documented one; the SDK connects with ``v1`` by default."""
PATHS = frozenset(
    f"/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
    for version in API_VERSIONS
)
OUTPUT_RATE = 24000
BAD_KEY = "API key not valid. Please pass a valid API key."
INVALID = "Request contains an invalid argument."
_RATE = re.compile(r"rate=(\d+)")
_CLIENT_FIELDS = {
    "setup": "setup",
    "clientContent": "clientContent",
    "client_content": "clientContent",
    "realtimeInput": "realtimeInput",
    "realtime_input": "realtimeInput",
    "toolResponse": "toolResponse",
    "tool_response": "toolResponse",
}


@dataclass
class LiveReply:
    """One scripted model turn: speech (``text``, ``audio_ms`` of tone; default 80 ms a word)
    or function calls (``function_calls``: ``(name, args)`` pairs, answered before the next
    reply plays)."""

    text: str = "Okay."
    audio_ms: int | None = None
    function_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def b64decode(data: str) -> bytes:
    """Proto JSON ``bytes``: standard or URL-safe base64, padded or not (the SDK sends the
    URL-safe form)."""
    data = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(data + "=" * (-len(data) % 4))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_keys(value: Any) -> Any:
    """Proto JSON accepts either spelling: everything as camelCase, to read it one way."""
    if isinstance(value, dict):
        return {_camel(str(k)): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


@dataclass
class _Connection:
    ws: ServerConnection
    authorized: bool
    setup: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    reply: asyncio.Task[None] | None = None
    pending_calls: dict[str, str] = field(default_factory=dict)
    vad: SpeechGate = field(default_factory=SpeechGate)
    activity: bool = False
    heard: str = ""
    handle: str = ""


class FakeGeminiLiveServer(SpeechToSpeechFake):
    """See the module docstring. ``async with FakeGeminiLiveServer() as fake: fake.base_url``
    (an ``http://`` origin, as ``http_options={"base_url": ...}`` takes it)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        chunk_ms: int = 40,
        pace_secs: float = 0.0,
        speech_threshold: int = 500,
    ) -> None:
        super().__init__(chunk_ms=chunk_ms, pace_secs=pace_secs, speech_threshold=speech_threshold)
        self.api_key = api_key
        self.replies: list[LiveReply] = []
        self.received: list[dict[str, Any]] = []
        """Every client message, as sent (parsed JSON), across connections."""
        self.raw_received: list[str] = []
        self.closed = 0
        """Connections that ended (either side closed)."""
        self.connections: list[_Connection] = []
        self._histories: dict[str, list[dict[str, Any]]] = {}
        self._server = LocalWebsocketServer(
            self._handle, api_key=None, auth=[], validate=self._validate_path
        )

    @property
    def base_url(self) -> str:
        """The API origin the service's / the SDK's ``base_url`` takes."""
        return self._http_origin

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Client messages carrying ``kind`` (``setup``, ``realtimeInput``, ...), camelCased."""
        out = []
        for message in self.received:
            message = camel_keys(message)
            if kind in message:
                out.append(message[kind])
        return out

    def server_content(self, key: str) -> list[dict[str, Any]]:
        """``serverContent`` messages carrying ``key`` (``modelTurn``, ``turnComplete``, ...)."""
        return [m["serverContent"] for m in self.sent if key in m.get("serverContent", {})]

    # ------------------------------------------------------------------ test triggers

    async def drop(self, code: int = 1011, reason: str = "Internal error encountered.") -> None:
        """Close every connection as a server failure does."""
        for conn in list(self.connections):
            await conn.ws.close(code, reason)

    # ------------------------------------------------------------------ plumbing

    async def _send(self, conn: _Connection, message: dict[str, Any]) -> None:
        self.sent.append(message)
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(json.dumps(message).encode())

    @staticmethod
    def _validate_path(request: Any) -> Refusal | None:
        from urllib.parse import urlsplit

        return None if urlsplit(request.path).path in PATHS else Refusal(404, "Not Found\n")

    def _key_ok(self, ws: ServerConnection) -> bool:
        from urllib.parse import parse_qs, urlsplit

        if self.api_key is None:
            return True
        request = ws.request
        if request is None:
            return False
        query = parse_qs(urlsplit(request.path).query)
        given = query.get("key", []) + request.headers.get_all("x-goog-api-key")
        return self.api_key in given

    async def _handle(self, ws: ServerConnection) -> None:
        conn = _Connection(ws, self._key_ok(ws))
        self.connections.append(conn)
        self.opened += 1
        try:
            async for raw in ws:
                text = raw.decode() if isinstance(raw, bytes) else raw
                if not conn.authorized:
                    await ws.close(1007, BAD_KEY)
                    break
                self.raw_received.append(text)
                try:
                    message = json.loads(text)
                except ValueError:
                    await ws.close(1007, INVALID)
                    break
                if isinstance(message, dict):
                    self.received.append(message)
                if not await self._on_message(conn, message):
                    await ws.close(1007, INVALID)
                    break
        except ConnectionClosed:
            pass
        finally:
            if conn.reply is not None:
                conn.reply.cancel()
            self.connections.remove(conn)
            self.closed += 1

    async def _on_message(self, conn: _Connection, message: Any) -> bool:
        """Handle one client message; False if Gemini would refuse it."""
        if not isinstance(message, dict) or len(message) != 1:
            return False
        [(key, body)] = message.items()
        kind = _CLIENT_FIELDS.get(key)
        if kind is None or not isinstance(body, dict):
            return False
        body = camel_keys(body)
        if kind == "setup":
            return await self._on_setup(conn, body)
        if conn.setup is None:
            return False
        if kind == "realtimeInput":
            await self._on_realtime_input(conn, body)
        elif kind == "clientContent":
            turns = body.get("turns") or []
            conn.history += [t for t in turns if isinstance(t, dict)]
            for turn in turns:
                texts = [p.get("text", "") for p in turn.get("parts") or [] if "text" in p]
                if turn.get("role", "user") == "user" and "".join(texts).strip():
                    conn.heard = " ".join(texts).strip()
            if body.get("turnComplete"):
                self._start_reply(conn)
        elif kind == "toolResponse":
            return await self._on_tool_response(conn, body)
        return True

    async def _on_setup(self, conn: _Connection, setup: dict[str, Any]) -> bool:
        if conn.setup is not None or not str(setup.get("model", "")).startswith("models/"):
            return False
        conn.setup = setup
        resumption = setup.get("sessionResumption")
        handle = resumption.get("handle") if isinstance(resumption, dict) else None
        if handle in self._histories:
            conn.history = list(self._histories[str(handle)])
        await self._send(conn, {"setupComplete": {}})
        await self._resumption_update(conn)
        return True

    async def _resumption_update(self, conn: _Connection) -> None:
        if conn.setup is None or not isinstance(conn.setup.get("sessionResumption"), dict):
            return
        conn.handle = f"handle-{uuid.uuid4().hex[:16]}"
        self._histories[conn.handle] = list(conn.history)
        update = {"newHandle": conn.handle, "resumable": True}
        await self._send(conn, {"sessionResumptionUpdate": update})

    def _detection(self, conn: _Connection) -> dict[str, Any]:
        config = (conn.setup or {}).get("realtimeInputConfig") or {}
        detection = config.get("automaticActivityDetection")
        return detection if isinstance(detection, dict) else {}

    # ------------------------------------------------------------------ caller input

    async def _on_realtime_input(self, conn: _Connection, body: dict[str, Any]) -> None:
        blobs = [body["audio"]] if isinstance(body.get("audio"), dict) else []
        blobs += [b for b in body.get("mediaChunks") or [] if isinstance(b, dict)]
        for blob in blobs:
            if str(blob.get("mimeType", "")).startswith("audio/pcm"):
                found = _RATE.search(str(blob.get("mimeType")))
                rate = int(found.group(1)) if found else 16000
                await self._on_audio(conn, b64decode(str(blob.get("data") or "")), rate)
        if "activityStart" in body:
            conn.activity = True
            await self._speech_started(conn)
        if "activityEnd" in body:
            conn.activity = False
            await self._speech_stopped(conn)
        text = body.get("text")
        if isinstance(text, str) and text.strip():
            conn.heard = text.strip()
            self._start_reply(conn)

    async def _on_audio(self, conn: _Connection, pcm: bytes, rate: int) -> None:
        self.audio_bytes += len(pcm)
        detection = self._detection(conn)
        if detection.get("disabled"):
            return  # the client marks the turns
        ms = len(pcm) / 2 / rate * 1000
        silence_ms = float(detection.get("silenceDurationMs") or 500)
        change = conn.vad.hear(is_loud(pcm, self.speech_threshold), ms, silence_ms)
        if change == "started":
            await self._speech_started(conn)
        elif change == "stopped":
            await self._speech_stopped(conn)

    async def _speech_started(self, conn: _Connection) -> None:
        if conn.pending_calls:
            # The caller spoke before the results came: those calls are void.
            ids = list(conn.pending_calls)
            conn.pending_calls.clear()
            await self._send(conn, {"toolCallCancellation": {"ids": ids}})
        task = conn.reply
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            conn.pending_calls.clear()
            await self._send(conn, {"serverContent": {"interrupted": True}})
            await self._turn_complete(conn)

    async def _speech_stopped(self, conn: _Connection) -> None:
        heard = self._next_transcript()
        if heard:
            conn.heard = heard
            conn.history.append({"role": "user", "parts": [{"text": heard}]})
            for index, word in enumerate(heard.split()):
                piece = word if index == 0 else f" {word}"
                await self._send(conn, {"serverContent": {"inputTranscription": {"text": piece}}})
        self._start_reply(conn)

    # ------------------------------------------------------------------ replies

    def _start_reply(self, conn: _Connection) -> None:
        if conn.reply is not None and not conn.reply.done():
            return  # one model turn at a time
        if self.replies:
            reply = self.replies.pop(0)
        elif self.echo and conn.heard:
            reply = LiveReply(f"You said: {conn.heard}")
        else:
            reply = LiveReply()
        conn.reply = asyncio.get_running_loop().create_task(self._play(conn, reply))

    async def _play(self, conn: _Connection, reply: LiveReply) -> None:
        if reply.function_calls:
            calls = []
            for name, args in reply.function_calls:
                call_id = f"function-call-{uuid.uuid4().int % 10**19}"
                conn.pending_calls[call_id] = name
                calls.append({"id": call_id, "name": name, "args": args})
            await self._send(conn, {"toolCall": {"functionCalls": calls}})
            return
        for ms, said in reply_chunks(reply.text, reply.audio_ms, self.chunk_ms):
            audio = base64.b64encode(tone_pcm(ms / 1000, OUTPUT_RATE)).decode()
            part = {"inlineData": {"mimeType": f"audio/pcm;rate={OUTPUT_RATE}", "data": audio}}
            await self._send(conn, {"serverContent": {"modelTurn": {"parts": [part]}}})
            if said:
                await self._send(conn, {"serverContent": {"outputTranscription": {"text": said}}})
            if self.pace_secs:
                await asyncio.sleep(self.pace_secs)
        conn.history.append({"role": "model", "parts": [{"text": reply.text}]})
        await self._send(conn, {"serverContent": {"generationComplete": True}})
        await self._turn_complete(conn)
        await self._resumption_update(conn)

    async def _turn_complete(self, conn: _Connection) -> None:
        usage = {
            "promptTokenCount": 20,
            "responseTokenCount": 10,
            "totalTokenCount": 30,
            "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 20}],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 10}],
        }
        await self._send(conn, {"serverContent": {"turnComplete": True}, "usageMetadata": usage})

    async def _on_tool_response(self, conn: _Connection, body: dict[str, Any]) -> bool:
        responses = [r for r in body.get("functionResponses") or [] if isinstance(r, dict)]
        for response in responses:
            call_id = str(response.get("id"))
            if call_id not in conn.pending_calls or not isinstance(response.get("response"), dict):
                await conn.ws.close(1008, "Requested entity was not found.")
                return True
            del conn.pending_calls[call_id]
            conn.history.append({"role": "user", "parts": [{"functionResponse": response}]})
        if not conn.pending_calls:
            conn.reply = None
            self._start_reply(conn)
        return True
