"""The Telnyx dialect of the call simulator (what Telnyx sends and expects)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from callpipe.audio import g711
from callpipe.errors import ConfigurationError
from callpipe.providers.dialect import (
    CallIdentity,
    Dialect,
    ServerEvent,
    b64,
    dumps,
    random_hex,
    unb64,
)


class TelnyxDialect(Dialect):
    """Telnyx media streaming (``bidirectionalMode="rtp"``): PCMU or PCMA 8 kHz, JSON text."""

    name = "telnyx"

    def __init__(self, identity: CallIdentity | None = None, encoding: str = "PCMU") -> None:
        if encoding not in ("PCMU", "PCMA"):
            raise ConfigurationError(f"Telnyx encoding must be PCMU or PCMA, got {encoding!r}")
        self.encoding = encoding
        super().__init__(identity)

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or str(uuid.uuid4())
        identity.call_id = identity.call_id or "v3:" + random_hex(40)
        identity.account_id = identity.account_id or str(uuid.uuid4())

    def _encode(self, pcm: bytes) -> bytes:
        return g711.pcm_to_ulaw(pcm) if self.encoding == "PCMU" else g711.pcm_to_alaw(pcm)

    def _decode(self, data: bytes) -> bytes:
        return g711.ulaw_to_pcm(data) if self.encoding == "PCMU" else g711.alaw_to_pcm(data)

    def handshake(self) -> list[str]:
        i = self.identity
        return [
            dumps({"event": "connected", "version": "1.0.0"}),
            dumps(
                {
                    "event": "start",
                    "sequence_number": str(self._next_seq()),
                    "start": {
                        "user_id": i.account_id,
                        "call_control_id": i.call_id,
                        "client_state": "",
                        "media_format": {
                            "encoding": self.encoding,
                            "sample_rate": 8000,
                            "channels": 1,
                        },
                        "from": i.from_number,
                        "to": i.to_number,
                    },
                    "stream_id": i.stream_id,
                }
            ),
        ]

    def media(self, pcm: bytes, timestamp_ms: int) -> str:
        return dumps(
            {
                "event": "media",
                "sequence_number": str(self._next_seq()),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._next_chunk()),
                    "timestamp": str(timestamp_ms),
                    "payload": b64(self._encode(pcm)),
                },
                "stream_id": self.identity.stream_id,
            }
        )

    def dtmf(self, digit: str) -> str:
        return dumps(
            {
                "event": "dtmf",
                "stream_id": self.identity.stream_id,
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "sequence_number": str(self._next_seq()),
                "dtmf": {"digit": digit},
            }
        )

    def mark_ack(self, event: ServerEvent) -> str:
        return dumps(
            {
                "event": "mark",
                "sequence_number": str(self._next_seq()),
                "stream_id": self.identity.stream_id,
                "mark": {"name": event.name},
            }
        )

    def stop(self) -> str:
        i = self.identity
        return dumps(
            {
                "event": "stop",
                "sequence_number": str(self._next_seq()),
                "stop": {"user_id": i.account_id, "call_control_id": i.call_id},
                "stream_id": i.stream_id,
            }
        )

    def parse(self, data: str | bytes) -> ServerEvent:
        message = self._load(data)
        if message is None:
            return ServerEvent("invalid", raw=data)
        event = message.get("event")
        if event == "media":
            audio = unb64((message.get("media") or {}).get("payload"))
            if audio is None:
                return ServerEvent("invalid", raw=message)
            return ServerEvent("audio", pcm=self._decode(audio), raw=message)
        if event == "clear":
            return ServerEvent("clear", raw=message)
        if event == "mark":
            name = (message.get("mark") or {}).get("name")
            if isinstance(name, str):
                return ServerEvent("mark", name=name, raw=message)
            return ServerEvent("invalid", raw=message)
        return ServerEvent("other", raw=message)
