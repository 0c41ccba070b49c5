"""The Vonage dialect of the call simulator (what Vonage sends and expects)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from callpipe.providers.dialect import (
    CallIdentity,
    Dialect,
    ServerEvent,
    dumps,
)


class VonageDialect(Dialect):
    """Vonage Voice API WebSocket: binary 16-bit linear PCM (16 kHz here), JSON text control.

    The bot's ``{"action": "notify", "payload": ...}`` is Vonage's mark: Vonage answers
    ``websocket:notify`` with the same payload once the audio queued before it has played.
    """

    name = "vonage"
    sample_rate = 16000

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or str(uuid.uuid4())
        identity.call_id = identity.call_id or str(uuid.uuid4())

    def handshake(self) -> list[str]:
        message: dict[str, Any] = {
            "event": "websocket:connected",
            "content-type": f"audio/l16;rate={self.sample_rate}",
            "uuid": self.identity.call_id,
        }
        message.update(self.identity.custom_parameters)
        return [dumps(message)]

    def media(self, pcm: bytes, timestamp_ms: int) -> bytes:
        return pcm

    def dtmf(self, digit: str) -> str:
        return dumps({"event": "websocket:dtmf", "digit": digit, "duration": 260})

    def mark_ack(self, event: ServerEvent) -> str:
        return dumps({"event": "websocket:notify", "payload": event.ack})

    def clear_ack(self) -> str:
        return dumps({"event": "websocket:cleared"})

    def parse(self, data: str | bytes) -> ServerEvent:
        if isinstance(data, bytes):
            return ServerEvent("audio", pcm=data[: len(data) // 2 * 2])
        message = self._load(data)
        if message is None:
            return ServerEvent("invalid", raw=data)
        action = message.get("action")
        if action == "clear":
            return ServerEvent("clear", raw=message)
        if action == "notify":
            payload = message.get("payload")
            name = ""
            if isinstance(payload, dict):
                found = payload.get("name", payload.get("mark", ""))
                name = found if isinstance(found, str) else json.dumps(found)
            elif isinstance(payload, str):
                name = payload
            return ServerEvent("mark", name=name, ack=payload, raw=message)
        return ServerEvent("other", raw=message)
