"""The Asterisk dialect of the call simulator: ``chan_websocket`` connecting to the bot.

Asterisk sends ``MEDIA_START`` first (plain text by default, JSON with ``f(json)``), then the
caller's audio as BINARY frames in the channel's format (µ-law 8 kHz here, as with
``c(ulaw)``) and key presses as ``DTMF_END`` events. The bot's BINARY frames are audio,
``FLUSH_MEDIA`` is a clear (Asterisk drops the queued marks with the audio: no acknowledgement)
and ``MARK_MEDIA <id>`` is acknowledged with ``MEDIA_MARK_PROCESSED <id>`` once the audio before
it has played. When the caller hangs up, Asterisk closes the socket (no stop message).
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any, ClassVar

from callpipe.audio import g711
from callpipe.providers.dialect import CallIdentity, Dialect, ServerEvent, dumps

_CHANNELS = itertools.count(1)


class AsteriskDialect(Dialect):
    """chan_websocket with ``c(ulaw)``: µ-law 8 kHz BINARY frames, text control messages."""

    name = "asterisk"
    acks_marks_on_clear: ClassVar[bool] = False
    control_format: ClassVar[str] = "plain-text"
    """``plain-text`` (Asterisk's default) or ``json`` (``f(json)``)."""

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or str(uuid.uuid4())
        identity.call_id = identity.call_id or f"1761245643.{next(_CHANNELS)}"

    @property
    def _json(self) -> bool:
        return self.control_format == "json"

    def handshake(self) -> list[str]:
        i = self.identity
        fields: dict[str, Any] = {
            "connection_id": i.stream_id,
            "channel": f"WebSocket/callpipe/0x{uuid.uuid5(uuid.NAMESPACE_OID, i.call_id).hex[:12]}",
            "channel_id": i.call_id,
            "format": "ulaw",
            "optimal_frame_size": 160,
            "ptime": 20,
        }
        if self._json:
            variables = {
                "MEDIA_WEBSOCKET_CONNECTION_ID": i.stream_id,
                "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": "160",
                **i.custom_parameters,
            }
            return [dumps({"event": "MEDIA_START", **fields, "channel_variables": variables})]
        return ["MEDIA_START " + " ".join(f"{k}:{v}" for k, v in fields.items())]

    def media(self, pcm: bytes, timestamp_ms: int) -> bytes:
        return g711.pcm_to_ulaw(pcm)

    def dtmf(self, digit: str) -> str:
        channel_id = self.identity.call_id
        if self._json:
            return dumps({"event": "DTMF_END", "channel_id": channel_id, "digit": digit})
        return f"DTMF_END digit:{digit} channel_id:{channel_id}"

    def mark_ack(self, event: ServerEvent) -> str:
        if self._json:
            return dumps(
                {
                    "event": "MEDIA_MARK_PROCESSED",
                    "channel_id": self.identity.call_id,
                    "correlation_id": event.name,
                }
            )
        return f"MEDIA_MARK_PROCESSED {event.name}"

    def parse(self, data: str | bytes) -> ServerEvent:
        if isinstance(data, bytes):
            return ServerEvent("audio", pcm=g711.ulaw_to_pcm(data))
        if data.lstrip().startswith("{") != self._json:
            return ServerEvent("invalid", raw=data)  # Asterisk ignores the other format
        command, argument = _command(data)
        if command == "FLUSH_MEDIA":
            return ServerEvent("clear", raw=data)
        if command == "MARK_MEDIA" and argument:
            return ServerEvent("mark", name=argument, raw=data)
        if command is None:
            return ServerEvent("invalid", raw=data)
        return ServerEvent("other", raw=data)


class AsteriskJsonDialect(AsteriskDialect):
    """The same, with JSON control messages (``f(json)``, Asterisk 20.18/22.8/23.2+)."""

    control_format: ClassVar[str] = "json"


def _command(text: str) -> tuple[str | None, str]:
    """``(command, correlation id)`` of a bot's command in either format; None if it is none."""
    if text.lstrip().startswith("{"):
        try:
            message = json.loads(text)
        except ValueError:
            return None, ""
        if not isinstance(message, dict) or not isinstance(message.get("command"), str):
            return None, ""
        return message["command"], str(message.get("correlation_id") or "")
    name, _, argument = text.strip().partition(" ")
    if not name or not name.replace("_", "").isalpha() or not name.isupper():
        return None, ""
    return name, argument.strip()
