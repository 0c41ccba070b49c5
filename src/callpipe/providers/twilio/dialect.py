"""The Twilio dialect of the call simulator (what Twilio sends and expects)."""

from __future__ import annotations

from callpipe.audio import g711
from callpipe.providers.dialect import (
    CallIdentity,
    Dialect,
    ServerEvent,
    b64,
    dumps,
    random_hex,
    unb64,
)


class TwilioDialect(Dialect):
    """Twilio Media Streams (bidirectional ``<Connect><Stream>``): µ-law 8 kHz, JSON text."""

    name = "twilio"

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or "MZ" + random_hex(32)
        identity.call_id = identity.call_id or "CA" + random_hex(32)
        identity.account_id = identity.account_id or "AC" + random_hex(32)

    def handshake(self) -> list[str]:
        i = self.identity
        return [
            dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
            dumps(
                {
                    "event": "start",
                    "sequenceNumber": str(self._next_seq()),
                    "start": {
                        "accountSid": i.account_id,
                        "streamSid": i.stream_id,
                        "callSid": i.call_id,
                        "tracks": ["inbound"],
                        "customParameters": dict(i.custom_parameters),
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "channels": 1,
                        },
                    },
                    "streamSid": i.stream_id,
                }
            ),
        ]

    def media(self, pcm: bytes, timestamp_ms: int) -> str:
        return dumps(
            {
                "event": "media",
                "sequenceNumber": str(self._next_seq()),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._next_chunk()),
                    "timestamp": str(timestamp_ms),
                    "payload": b64(g711.pcm_to_ulaw(pcm)),
                },
                "streamSid": self.identity.stream_id,
            }
        )

    def dtmf(self, digit: str) -> str:
        return dumps(
            {
                "event": "dtmf",
                "streamSid": self.identity.stream_id,
                "sequenceNumber": str(self._next_seq()),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def mark_ack(self, event: ServerEvent) -> str:
        return dumps(
            {
                "event": "mark",
                "sequenceNumber": str(self._next_seq()),
                "streamSid": self.identity.stream_id,
                "mark": {"name": event.name},
            }
        )

    def stop(self) -> str:
        i = self.identity
        return dumps(
            {
                "event": "stop",
                "sequenceNumber": str(self._next_seq()),
                "streamSid": i.stream_id,
                "stop": {"accountSid": i.account_id, "callSid": i.call_id},
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
            return ServerEvent("audio", pcm=g711.ulaw_to_pcm(audio), raw=message)
        if event == "clear":
            return ServerEvent("clear", raw=message)
        if event == "mark":
            name = (message.get("mark") or {}).get("name")
            if isinstance(name, str):
                return ServerEvent("mark", name=name, raw=message)
            return ServerEvent("invalid", raw=message)
        return ServerEvent("other", raw=message)
