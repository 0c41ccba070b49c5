"""FakeOpenAIRealtimeServer: OpenAI Realtime (GA interface) on a loopback WebSocket.

The contract followed (OpenAI's Realtime WebSocket guide and API reference, and the ``openai``
SDK's ``types/realtime`` models, which the contract test checks every message against):

- **Handshake.** ``/v1/realtime?model=...`` with ``Authorization: Bearer <key>``. A wrong key is
  HTTP 401 with OpenAI's JSON error body (``invalid_api_key``).
- **Session.** ``session.created`` when the socket opens (a ``type: "realtime"`` session: 24 kHz
  ``audio/pcm`` both ways, ``server_vad``); each ``session.update`` is merged into the session
  and answered with ``session.updated`` carrying the whole session.
- **Caller audio.** ``input_audio_buffer.append`` (base64, in the session's input format). With
  ``server_vad`` / ``semantic_vad``: audio louder than ``speech_threshold`` (peak sample) starts
  speech (``input_audio_buffer.speech_started``); ``silence_duration_ms`` of quiet after it
  (default 500, from the session) stops it: ``speech_stopped``, ``committed``,
  ``conversation.item.added`` / ``done`` (the user item) and, when input transcription is on,
  ``conversation.item.input_audio_transcription.completed`` with the next of ``transcripts``.
  Unless ``create_response`` is false, a response follows. ``interrupt_response`` (default on)
  cancels a running response when speech starts. :meth:`speak` does the same for a test
  without audio. With ``turn_detection: null``, ``input_audio_buffer.commit`` commits.
- **Responses.** ``response.create`` (or a turn) plays the next of ``replies`` (a
  :class:`RealtimeReply`; "Okay." when none is queued): ``response.created``, the assistant
  item (``response.output_item.added``, ``conversation.item.added``), audio in
  ``response.output_audio.delta`` messages of ``chunk_ms`` (a tone, in the session's output
  format, ``pace_secs`` apart) with the transcript word by word in
  ``response.output_audio_transcript.delta``, the ``done`` events, then ``response.done``. A
  reply with ``function_call`` sends a ``function_call`` item, ``response.function_call_arguments
  .delta`` / ``.done``, and ``response.done``. A second ``response.create`` while one runs gets
  the ``conversation_already_has_active_response`` error.
- **Barge-in.** ``response.cancel`` stops the running response (``response.done`` with status
  ``cancelled``), or answers ``response_cancel_not_active``. ``conversation.item.truncate`` is
  answered ``conversation.item.truncated``, or an ``invalid_value`` error when ``audio_end_ms``
  is past the audio sent for the item.
- **Items.** ``conversation.item.create`` is answered ``conversation.item.added`` and ``done``
  (an id is given when the client sent none).

With ``echo`` set (``callpipe fakes`` sets it) any speech is heard as the next transcript and
an unscripted response echoes it: "You said: …".

Everything received is in ``events``; everything sent in ``sent``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal
from callpipe.testing.fakes._speech_to_speech import (
    SpeechGate,
    SpeechToSpeechFake,
    is_loud,
    reply_chunks,
)
from callpipe.testing.fakes.openai import tone_pcm

PATH = "/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
_RATES = {"audio/pcm": 24000, "audio/pcmu": 8000, "audio/pcma": 8000}


@dataclass
class RealtimeReply:
    """One scripted response: speech (``transcript``, ``audio_ms`` of tone; default 80 ms a
    word) or a function call (``function_call=(name, arguments)``)."""

    transcript: str = "Okay."
    audio_ms: int | None = None
    function_call: tuple[str, dict[str, Any]] | None = None


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _unauthorized() -> Refusal:
    body = {
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "param": None,
        }
    }
    return Refusal(401, json.dumps(body), {"content-type": "application/json"})


def _default_session(model: str) -> dict[str, Any]:
    return {
        "type": "realtime",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1,
            },
        },
    }


def _merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "format":
            _merge(base[key], value)
        else:
            base[key] = value


@dataclass
class _Connection:
    ws: ServerConnection
    session: dict[str, Any]
    audio_ms: float = 0.0
    vad: SpeechGate = field(default_factory=SpeechGate)
    speech_start_ms: float = 0.0
    input_item: str = ""
    response: asyncio.Task[None] | None = None
    response_id: str = ""
    item_audio_ms: dict[str, float] = field(default_factory=dict)
    last_item: str | None = None
    heard: str = ""


class FakeOpenAIRealtimeServer(SpeechToSpeechFake):
    """See the module docstring. ``async with FakeOpenAIRealtimeServer() as fake: fake.url``
    (a ``ws://`` base URL: pass ``fake.url + "/v1/realtime"`` as the service's ``base_url``)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        chunk_ms: int = 40,
        pace_secs: float = 0.0,
        speech_threshold: int = 500,
    ) -> None:
        super().__init__(chunk_ms=chunk_ms, pace_secs=pace_secs, speech_threshold=speech_threshold)
        self.replies: list[RealtimeReply] = []
        self.transcript_delay_secs = 0.0
        """How long after the commit the transcript comes (OpenAI transcribes asynchronously:
        it often arrives after the response started)."""
        self.errors_after_update: list[tuple[str, str]] = []
        """``error`` events (code, message) to send right after the next ``session.updated``."""
        self.events: list[dict[str, Any]] = []
        """Every client event received, in order, across connections."""
        self.connections: list[_Connection] = []
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Bearer ")],
            path=PATH,
            unauthorized=_unauthorized(),
        )

    @property
    def base_url(self) -> str:
        """The service's ``base_url`` (the endpoint without ``?model=``)."""
        return self.url + PATH

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Client events of one ``type``."""
        return [e for e in self.events if e.get("type") == kind]

    # ------------------------------------------------------------------ test triggers

    async def speak(self, transcript: str = "", *, speech_ms: int = 500) -> None:
        """Act as if the caller said ``transcript`` (start, stop, transcript, response)."""
        if transcript:
            self.transcripts.append(transcript)
        for conn in self.connections:
            await self._speech_started(conn)
            conn.audio_ms += speech_ms
            await self._speech_stopped(conn)

    async def drop(self, code: int = 1011, reason: str = "server error") -> None:
        """Close every connection as a server failure does (1011: the client may reconnect)."""
        for conn in list(self.connections):
            await conn.ws.close(code, reason)

    async def send_error(
        self, code: str, message: str, kind: str = "invalid_request_error"
    ) -> None:
        for conn in self.connections:
            await self._error(conn, code, message, kind)

    # ------------------------------------------------------------------ plumbing

    async def _send(self, conn: _Connection, event: dict[str, Any]) -> None:
        event = {"event_id": _id("event"), **event}
        self.sent.append(event)
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(json.dumps(event))

    async def _error(
        self, conn: _Connection, code: str, message: str, kind: str = "invalid_request_error"
    ) -> None:
        error = {"type": kind, "code": code, "message": message, "param": None, "event_id": None}
        await self._send(conn, {"type": "error", "error": error})

    async def _handle(self, ws: ServerConnection) -> None:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        conn = _Connection(ws, _default_session(query.get("model", [DEFAULT_MODEL])[-1]))
        self.connections.append(conn)
        self.opened += 1
        await self._send(conn, {"type": "session.created", "session": conn.session})
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    await self._error(conn, "invalid_json", "Binary messages are not supported")
                    continue
                try:
                    event = json.loads(message)
                except ValueError:
                    await self._error(conn, "invalid_json", "The message is not valid JSON")
                    continue
                self.events.append(event)
                await self._on_event(conn, event)
        except ConnectionClosed:
            pass
        finally:
            if conn.response is not None:
                conn.response.cancel()
            self.connections.remove(conn)

    async def _on_event(self, conn: _Connection, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update":
            _merge(conn.session, event.get("session") or {})
            await self._send(conn, {"type": "session.updated", "session": conn.session})
            errors, self.errors_after_update = self.errors_after_update, []
            for code, message in errors:
                await self._error(conn, code, message)
        elif kind == "input_audio_buffer.append":
            await self._on_audio(conn, str(event.get("audio") or ""))
        elif kind == "input_audio_buffer.commit":
            await self._commit(conn)
        elif kind == "response.create":
            await self._start_response(conn)
        elif kind == "response.cancel":
            if not await self._cancel(conn):
                await self._error(
                    conn, "response_cancel_not_active", "Cancellation failed: no active response"
                )
        elif kind == "conversation.item.truncate":
            await self._truncate(conn, event)
        elif kind == "conversation.item.create":
            item = dict(event.get("item") or {})
            item.setdefault("id", _id("item"))
            item.setdefault("object", "realtime.item")
            item.setdefault("status", "completed")
            await self._send(
                conn,
                {
                    "type": "conversation.item.added",
                    "previous_item_id": conn.last_item,
                    "item": item,
                },
            )
            await self._send(conn, {"type": "conversation.item.done", "item": item})
            conn.last_item = item["id"]
            if self.echo and item.get("role") == "user":
                parts = [p for p in item.get("content") or [] if isinstance(p, dict)]
                texts = [str(p.get("text") or "") for p in parts]
                conn.heard = " ".join(t for t in texts if t) or conn.heard
        else:
            await self._error(conn, "invalid_value", f"Invalid value: '{kind}'")

    # ------------------------------------------------------------------ caller audio

    def _turn_detection(self, conn: _Connection) -> dict[str, Any] | None:
        detection = conn.session["audio"]["input"].get("turn_detection")
        return detection if isinstance(detection, dict) else None

    async def _on_audio(self, conn: _Connection, payload: str) -> None:
        raw = base64.b64decode(payload)
        self.audio_bytes += len(raw)
        fmt = conn.session["audio"]["input"]["format"].get("type", "audio/pcm")
        pcm = (
            ulaw_to_pcm(raw)
            if fmt == "audio/pcmu"
            else alaw_to_pcm(raw)
            if fmt == "audio/pcma"
            else raw
        )
        ms = len(pcm) / 2 / _RATES[fmt] * 1000
        detection = self._turn_detection(conn)
        conn.audio_ms += ms
        if detection is None:
            return
        silence_ms = float(detection.get("silence_duration_ms") or 500)
        change = conn.vad.hear(is_loud(pcm, self.speech_threshold), ms, silence_ms)
        if change == "started":
            await self._speech_started(conn)
        elif change == "stopped":
            await self._speech_stopped(conn)

    async def _speech_started(self, conn: _Connection) -> None:
        conn.vad.in_speech, conn.vad.quiet_ms = True, 0.0  # also when speak() calls it
        conn.input_item = _id("item")
        detection = self._turn_detection(conn) or {}
        if detection.get("interrupt_response", True) is not False:
            await self._cancel(conn)
        await self._send(
            conn,
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": int(conn.audio_ms),
                "item_id": conn.input_item,
            },
        )

    async def _speech_stopped(self, conn: _Connection) -> None:
        conn.vad.in_speech = False
        await self._send(
            conn,
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": int(conn.audio_ms),
                "item_id": conn.input_item,
            },
        )
        await self._commit(
            conn,
            respond=(self._turn_detection(conn) or {}).get("create_response", True) is not False,
        )

    async def _commit(self, conn: _Connection, *, respond: bool = False) -> None:
        item_id = conn.input_item or _id("item")
        conn.input_item = ""
        await self._send(
            conn,
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": conn.last_item,
                "item_id": item_id,
            },
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self._send(
            conn,
            {"type": "conversation.item.added", "previous_item_id": conn.last_item, "item": item},
        )
        await self._send(conn, {"type": "conversation.item.done", "item": item})
        conn.last_item = item_id
        transcribed = conn.session["audio"]["input"].get("transcription") is not None
        if transcribed or self.echo:
            conn.heard = self._next_transcript()
        if transcribed:
            transcript = conn.heard
            completed = {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": 0.5},
            }
            if self.transcript_delay_secs:
                asyncio.get_running_loop().call_later(
                    self.transcript_delay_secs,
                    lambda: asyncio.ensure_future(self._send(conn, completed)),
                )
            else:
                await self._send(conn, completed)
        if respond:
            await self._start_response(conn)

    # ------------------------------------------------------------------ responses

    async def _start_response(self, conn: _Connection) -> None:
        if conn.response is not None and not conn.response.done():
            await self._error(
                conn,
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress",
            )
            return
        if self.replies:
            reply = self.replies.pop(0)
        elif self.echo and conn.heard:
            reply = RealtimeReply(transcript=f"You said: {conn.heard}")
        else:
            reply = RealtimeReply()
        conn.response_id = _id("resp")
        conn.response = asyncio.get_running_loop().create_task(self._respond(conn, reply))

    def _response(self, conn: _Connection, status: str, output: list[Any]) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": conn.response_id,
            "status": status,
            "status_details": {"type": "cancelled", "reason": "client_cancelled"}
            if status == "cancelled"
            else None,
            "output": output,
            "conversation_id": "conv_fake",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {
                "output": {"format": conn.session["audio"]["output"]["format"], "voice": "alloy"}
            },
            "usage": None,
            "metadata": None,
        }

    async def _respond(self, conn: _Connection, reply: RealtimeReply) -> None:
        rid = conn.response_id
        await self._send(
            conn, {"type": "response.created", "response": self._response(conn, "in_progress", [])}
        )
        item_id = _id("item")
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "status": "in_progress"}
        if reply.function_call is not None:
            name, arguments = reply.function_call
            call_id = _id("call")
            args = json.dumps(arguments)
            item.update(type="function_call", call_id=call_id, name=name, arguments="")
            await self._item_added(conn, item)
            where = {"response_id": rid, "item_id": item_id, "output_index": 0, "call_id": call_id}
            delta = {"type": "response.function_call_arguments.delta", **where, "delta": args}
            await self._send(conn, delta)
            done = {"type": "response.function_call_arguments.done", **where, "arguments": args}
            await self._send(conn, {**done, "name": name})
            await self._item_done(conn, {**item, "status": "completed", "arguments": args})
            return
        item.update(type="message", role="assistant", content=[])
        await self._item_added(conn, item)
        conn.item_audio_ms[item_id] = 0.0
        fmt = conn.session["audio"]["output"]["format"].get("type", "audio/pcm")
        rate = _RATES[fmt]
        where = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
        for ms, said in reply_chunks(reply.transcript, reply.audio_ms, self.chunk_ms):
            pcm = tone_pcm(ms / 1000, rate)
            data = (
                pcm_to_ulaw(pcm)
                if fmt == "audio/pcmu"
                else pcm_to_alaw(pcm)
                if fmt == "audio/pcma"
                else pcm
            )
            audio = base64.b64encode(data).decode()
            await self._send(conn, {"type": "response.output_audio.delta", **where, "delta": audio})
            conn.item_audio_ms[item_id] += ms
            if said:
                await self._send(
                    conn, {"type": "response.output_audio_transcript.delta", **where, "delta": said}
                )
            if self.pace_secs:
                await asyncio.sleep(self.pace_secs)
        await self._send(conn, {"type": "response.output_audio.done", **where})
        transcript = reply.transcript
        done = {"type": "response.output_audio_transcript.done", **where, "transcript": transcript}
        await self._send(conn, done)
        content = [{"type": "output_audio", "transcript": transcript}]
        await self._item_done(conn, {**item, "status": "completed", "content": content})

    async def _item_added(self, conn: _Connection, item: dict[str, Any]) -> None:
        """A response's output item begins (in the response and in the conversation)."""
        where = {"response_id": conn.response_id, "output_index": 0}
        await self._send(conn, {"type": "response.output_item.added", **where, "item": item})
        added = {"type": "conversation.item.added", "previous_item_id": conn.last_item}
        await self._send(conn, {**added, "item": item})
        conn.last_item = item["id"]

    async def _item_done(self, conn: _Connection, item: dict[str, Any]) -> None:
        """The output item is complete, and with it the response."""
        where = {"response_id": conn.response_id, "output_index": 0}
        await self._send(conn, {"type": "conversation.item.done", "item": item})
        await self._send(conn, {"type": "response.output_item.done", **where, "item": item})
        response = self._response(conn, "completed", [item])
        await self._send(conn, {"type": "response.done", "response": response})

    async def _cancel(self, conn: _Connection) -> bool:
        task = conn.response
        if task is None or task.done():
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._send(
            conn, {"type": "response.done", "response": self._response(conn, "cancelled", [])}
        )
        return True

    async def _truncate(self, conn: _Connection, event: dict[str, Any]) -> None:
        item_id = str(event.get("item_id"))
        end = event.get("audio_end_ms")
        sent = conn.item_audio_ms.get(item_id)
        if sent is None:
            await self._error(conn, "invalid_value", f"Item {item_id} has no audio to truncate")
            return
        if not isinstance(end, int) or end < 0 or end > sent:
            await self._error(
                conn, "invalid_value", f"audio_end_ms {end} is beyond the audio ({int(sent)} ms)"
            )
            return
        await self._send(
            conn,
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": int(event.get("content_index") or 0),
                "audio_end_ms": end,
            },
        )
