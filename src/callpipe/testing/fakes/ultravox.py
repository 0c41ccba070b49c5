"""FakeUltravoxServer: Ultravox Realtime's create-call API and its server WebSocket, on loopback.

The contract followed (Ultravox's docs: the WebSocket integration guide, the create-call API
reference and the data-message protocol; the contract test cites the pages):

- **Creating a call.** ``POST /api/calls`` or ``POST /api/agents/{agent_id}/calls`` with the key
  in ``X-API-Key`` (a wrong one: 401 ``{"detail": ...}``) and a JSON body whose ``medium`` is
  ``{"serverWebSocket": {"inputSampleRate", "outputSampleRate"?, "clientBufferSizeMs"?}}``
  (other media, a missing or non-positive rate, a bad ``initialOutputMedium`` or
  ``maxDuration``, a selected tool that is neither a ``toolName``/``toolId`` nor a
  ``temporaryTool``: 400 with the field's problem). The answer (201) is the call, with its
  ``callId`` and ``joinUrl`` (this fake's socket, ``/calls/{callId}/server_web_socket``; an
  unknown or ended call's socket is refused with 404; :meth:`end_call` ends the calls).
- **The socket.** Binary messages are 16-bit LE mono PCM both ways, at the call's rates. Text
  messages are JSON data messages. Sent: ``call_started`` and ``state`` (``listening``,
  ``thinking``, ``speaking``) messages, ``transcript`` messages (``role``, ``medium``, ``text``
  or ``delta``, ``final``, ``ordinal``), ``client_tool_invocation``, ``playback_clear_buffer``,
  ``pong``. Received: ``user_text_message``, ``set_output_medium``, ``client_tool_result``,
  ``hang_up`` (the call ends: the socket closes), ``ping``.
- **The fake's model.** Unless the call's ``firstSpeaker`` is ``FIRST_SPEAKER_USER``, the agent
  greets first (the next of ``replies``, else ``greeting``). Caller audio louder than
  ``speech_threshold`` starts a turn (a reply being spoken is cut: ``playback_clear_buffer``);
  ``silence_ms`` of quiet ends it: the user's final transcript (the next of ``transcripts``),
  then the next reply. A reply speaks a tone in ``chunk_ms`` binary messages (``pace_secs``
  apart) with the transcript in ``delta``\\ s, then a final ``text``; with the text medium only
  the transcripts. A reply with ``tool_call`` sends ``client_tool_invocation`` and waits for
  its ``client_tool_result``; the next reply follows unless ``agentReaction`` is ``listens``.

With ``echo`` set (``callpipe fakes`` sets it) a turn is heard as the next transcript (or
"hello") and an unscripted reply says "You said: ...".

Records: ``calls`` (each create-call body), ``call_headers``, ``received`` (every data message
from the client), ``sent`` (every data message to it), ``audio_bytes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
from callpipe.testing.fakes._speech_to_speech import (
    SpeechGate,
    SpeechToSpeechFake,
    is_loud,
    reply_chunks,
)
from callpipe.testing.fakes.openai import tone_pcm

CALLS_PATH = "/api/calls"
AGENT_CALLS_PATH = "/api/agents/{agent_id}/calls"
_SOCKET_PATH = re.compile(r"^/calls/([0-9a-f-]{36})/server_web_socket$")
_DURATION = re.compile(r"^\d+(\.\d+)?s$")
OUTPUT_MEDIUMS = ("MESSAGE_MEDIUM_VOICE", "MESSAGE_MEDIUM_TEXT")
FIRST_SPEAKERS = ("FIRST_SPEAKER_AGENT", "FIRST_SPEAKER_USER")


@dataclass
class UltravoxReply:
    """One scripted agent utterance: ``transcript`` spoken over ``audio_ms`` of tone (default
    80 ms a word), or a client tool call (``tool_call=(name, parameters)``)."""

    transcript: str = "Okay."
    audio_ms: int | None = None
    tool_call: tuple[str, dict[str, Any]] | None = None


@dataclass
class _Call:
    call_id: str
    body: dict[str, Any]
    in_rate: int
    out_rate: int
    medium: str = "voice"
    joined: int = 0
    ended: bool = False


@dataclass
class _Connection:
    ws: ServerConnection
    call: _Call
    vad: SpeechGate = field(default_factory=SpeechGate)
    reply: asyncio.Task[None] | None = None
    pending_tool: str | None = None
    heard: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _problem(field_name: str, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({field_name: [message]}, status_code=status)


def _invalid(body: dict[str, Any]) -> JSONResponse | None:
    """The 400 answer Ultravox gives this body, if it would refuse it."""
    medium = body.get("medium")
    if not isinstance(medium, dict) or set(medium) != {"serverWebSocket"}:
        return _problem("medium", "This fake serves only the serverWebSocket medium.")
    socket = medium["serverWebSocket"]
    if not isinstance(socket, dict):
        return _problem("medium", "serverWebSocket must be an object.")
    for name in ("inputSampleRate", "outputSampleRate", "clientBufferSizeMs"):
        value = socket.get(name)
        required = name == "inputSampleRate"
        if value is None and not required:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return _problem("medium", f"serverWebSocket.{name} must be a positive integer.")
    initial = body.get("initialOutputMedium")
    if initial is not None and initial not in OUTPUT_MEDIUMS:
        return _problem("initialOutputMedium", f"Must be one of {list(OUTPUT_MEDIUMS)}.")
    speaker = body.get("firstSpeaker")
    if speaker is not None and speaker not in FIRST_SPEAKERS:
        return _problem("firstSpeaker", f"Must be one of {list(FIRST_SPEAKERS)}.")
    duration = body.get("maxDuration")
    if duration is not None and not (isinstance(duration, str) and _DURATION.match(duration)):
        return _problem("maxDuration", "A duration in seconds, such as '3600s'.")
    for tool in body.get("selectedTools") or []:
        if not isinstance(tool, dict) or not ({"toolName", "toolId", "temporaryTool"} & set(tool)):
            return _problem("selectedTools", "Each tool needs toolName, toolId or temporaryTool.")
        temporary = tool.get("temporaryTool")
        if temporary is not None and not (
            isinstance(temporary, dict) and temporary.get("modelToolName")
        ):
            return _problem("selectedTools", "A temporaryTool needs its modelToolName.")
    return None


class FakeUltravoxServer(CreatesSessionsOverHTTP, SpeechToSpeechFake):
    """See the module docstring. ``async with FakeUltravoxServer() as fake``: ``fake.base_url``
    is the API origin (``$CALLPIPE_ULTRAVOX_URL``)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        chunk_ms: int = 40,
        pace_secs: float = 0.0,
        speech_threshold: int = 500,
        silence_ms: int = 200,
    ) -> None:
        super().__init__(chunk_ms=chunk_ms, pace_secs=pace_secs, speech_threshold=speech_threshold)
        self.api_key = api_key
        self.silence_ms = silence_ms
        self.greeting: str | None = "Hello."
        """The agent's first words when no reply is queued (None: it waits for the caller)."""
        self.replies: list[UltravoxReply] = []
        self.calls: list[dict[str, Any]] = []
        """Each accepted create-call body."""
        self.call_paths: list[str] = []
        self.call_headers: list[dict[str, str]] = []
        self.received: list[dict[str, Any]] = []
        self.connections: list[_Connection] = []
        self._calls: dict[str, _Call] = {}
        self._ordinal = 0
        self._http = LocalASGIServer(
            fake_app(
                [
                    Route(CALLS_PATH, self._create, methods=["POST"]),
                    Route(AGENT_CALLS_PATH, self._create, methods=["POST"]),
                ]
            )
        )
        self._server = LocalWebsocketServer(
            self._handle, api_key=None, auth=[], validate=self._known_call
        )

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Data messages received of one ``type``."""
        return [m for m in self.received if m.get("type") == kind]

    def sent_of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type") == kind]

    # ------------------------------------------------------------------ creating calls

    async def _create(self, request: Request) -> JSONResponse:
        self.call_headers.append({k.lower(): v for k, v in request.headers.items()})
        self.call_paths.append(request.url.path)
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return JSONResponse({"detail": "Invalid API key."}, status_code=401)
        body = json_object(await request.body())
        if body is None:
            return JSONResponse({"detail": "JSON parse error."}, status_code=400)
        problem = _invalid(body)
        if problem is not None:
            return problem
        self.calls.append(body)
        socket = body["medium"]["serverWebSocket"]
        in_rate = int(socket["inputSampleRate"])
        out_rate = int(socket.get("outputSampleRate") or in_rate)
        call_id = str(uuid.uuid4())
        medium = "text" if body.get("initialOutputMedium") == "MESSAGE_MEDIUM_TEXT" else "voice"
        self._calls[call_id] = _Call(call_id, body, in_rate, out_rate, medium)
        origin = f"{'wss' if self.secure else 'ws'}://127.0.0.1:{self._server.port}"
        answer = {
            "callId": call_id,
            "created": _now(),
            "joined": None,
            "ended": None,
            "joinUrl": f"{origin}/calls/{call_id}/server_web_socket",
            "medium": body["medium"],
            "model": body.get("model", "ultravox-v0.7"),
            "systemPrompt": body.get("systemPrompt"),
            "temperature": body.get("temperature", 0),
            "voice": body.get("voice"),
            "maxDuration": body.get("maxDuration", "3600s"),
            "firstSpeaker": body.get("firstSpeaker", "FIRST_SPEAKER_AGENT"),
            "initialOutputMedium": body.get("initialOutputMedium", "MESSAGE_MEDIUM_VOICE"),
            "metadata": body.get("metadata", {}),
        }
        return JSONResponse(answer, status_code=201)

    # ------------------------------------------------------------------ the socket

    def _known_call(self, request: Any) -> Refusal | None:
        from urllib.parse import urlsplit

        found = _SOCKET_PATH.match(urlsplit(request.path).path)
        call = self._calls.get(found.group(1)) if found is not None else None
        if call is None or call.ended:
            return Refusal(404, "Not Found\n")
        return None

    async def _send(self, conn: _Connection, message: dict[str, Any]) -> None:
        self.sent.append(message)
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(json.dumps(message))

    async def _state(self, conn: _Connection, state: str) -> None:
        await self._send(conn, {"type": "state", "state": state})

    async def _handle(self, ws: ServerConnection) -> None:
        from urllib.parse import urlsplit

        assert ws.request is not None
        found = _SOCKET_PATH.match(urlsplit(ws.request.path).path)
        assert found is not None
        conn = _Connection(ws, self._calls[found.group(1)])
        self.connections.append(conn)
        self.opened += 1
        try:
            await self._send(conn, {"type": "call_started", "callId": conn.call.call_id})
            await self._state(conn, "listening")
            conn.call.joined += 1
            agent_first = conn.call.body.get("firstSpeaker") != "FIRST_SPEAKER_USER"
            if agent_first and conn.call.joined == 1 and (self.replies or self.greeting):
                self._start_reply(conn, greeting=True)
            async for message in ws:
                if isinstance(message, bytes):
                    await self._on_audio(conn, message)
                    continue
                data = json_object(message)
                if data is None:
                    continue
                self.received.append(data)
                await self._on_data(conn, data)
        except ConnectionClosed:
            pass
        finally:
            if conn.reply is not None:
                conn.reply.cancel()
            self.connections.remove(conn)

    async def _on_data(self, conn: _Connection, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "user_text_message":
            conn.heard = str(data.get("text") or "")
            if not data.get("deferResponse"):
                await self._interrupt(conn)
                self._start_reply(conn)
        elif kind == "set_output_medium":
            if data.get("medium") in ("voice", "text"):
                conn.call.medium = str(data["medium"])
        elif kind == "client_tool_result":
            if data.get("invocationId") == conn.pending_tool:
                conn.pending_tool = None
                if data.get("agentReaction") != "listens":
                    self._start_reply(conn)
        elif kind == "ping":
            await self._send(conn, {"type": "pong", "timestamp": data.get("timestamp")})
        elif kind == "hang_up":
            await conn.ws.close(1000, "hang up")

    # ------------------------------------------------------------------ caller audio

    async def _on_audio(self, conn: _Connection, pcm: bytes) -> None:
        self.audio_bytes += len(pcm)
        ms = len(pcm) / 2 / conn.call.in_rate * 1000
        change = conn.vad.hear(is_loud(pcm, self.speech_threshold), ms, self.silence_ms)
        if change == "started":
            await self._interrupt(conn)
        elif change == "stopped":
            await self._turn_ended(conn)

    async def speak(self, transcript: str = "") -> None:
        """Act as if the caller said ``transcript`` (a barge-in if the agent speaks)."""
        if transcript:
            self.transcripts.append(transcript)
        for conn in self.connections:
            await self._interrupt(conn)
            await self._turn_ended(conn)

    async def _interrupt(self, conn: _Connection) -> None:
        task = conn.reply
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._send(conn, {"type": "playback_clear_buffer"})
        await self._state(conn, "listening")

    async def _turn_ended(self, conn: _Connection) -> None:
        await self._state(conn, "thinking")
        heard = self._next_transcript()
        conn.heard = heard or conn.heard
        if heard:
            await self._transcript(conn, "user", "voice", text=heard, final=True)
        self._start_reply(conn)

    # ------------------------------------------------------------------ the agent

    async def _transcript(
        self,
        conn: _Connection,
        role: str,
        medium: str,
        *,
        text: str | None = None,
        delta: str | None = None,
        final: bool,
        ordinal: int | None = None,
    ) -> None:
        if ordinal is None:
            ordinal = self._ordinal
            self._ordinal += 1
        message: dict[str, Any] = {"type": "transcript", "role": role, "medium": medium}
        if delta is not None:
            message["delta"] = delta
        else:
            message["text"] = text
        message |= {"final": final, "ordinal": ordinal}
        await self._send(conn, message)

    def _start_reply(self, conn: _Connection, *, greeting: bool = False) -> None:
        if self.replies:
            reply = self.replies.pop(0)
        elif greeting and self.greeting:
            reply = UltravoxReply(self.greeting)
        elif self.echo and conn.heard:
            reply = UltravoxReply(f"You said: {conn.heard}")
        else:
            reply = UltravoxReply()
        conn.reply = asyncio.get_running_loop().create_task(self._reply(conn, reply))

    async def _reply(self, conn: _Connection, reply: UltravoxReply) -> None:
        if reply.tool_call is not None:
            name, parameters = reply.tool_call
            conn.pending_tool = str(uuid.uuid4())
            invocation = {
                "type": "client_tool_invocation",
                "toolName": name,
                "invocationId": conn.pending_tool,
                "parameters": parameters,
            }
            await self._send(conn, invocation)
            return
        medium = conn.call.medium
        ordinal = self._ordinal
        self._ordinal += 1
        await self._state(conn, "speaking")
        rate = conn.call.out_rate
        for ms, said in reply_chunks(reply.transcript, reply.audio_ms, self.chunk_ms):
            if medium == "voice":
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(tone_pcm(ms / 1000, rate))
            if said:
                await self._transcript(
                    conn, "agent", medium, delta=said, final=False, ordinal=ordinal
                )
            if self.pace_secs:
                await asyncio.sleep(self.pace_secs)
        await self._transcript(
            conn, "agent", medium, text=reply.transcript, final=True, ordinal=ordinal
        )
        await self._state(conn, "listening")

    async def end_call(self) -> None:
        """End every call from Ultravox's side (the agent hung up): a normal close, and the
        call's socket can no longer be joined."""
        for conn in list(self.connections):
            conn.call.ended = True
            await conn.ws.close(1000, "call ended")

    async def drop(self) -> None:
        """Abort every socket (no close frame): the client may join the call again."""
        for conn in list(self.connections):
            conn.ws.transport.abort()
