"""The Exotel dialect of the call simulator (what Exotel sends and expects)."""

from __future__ import annotations

from callpipe.providers.dialect import (
    CallIdentity,
    Dialect,
    ServerEvent,
    b64,
    dumps,
    random_hex,
    unb64,
)


class ExotelDialect(Dialect):
    """Exotel Voicebot applet: base64 raw PCM16 (slin) 8 kHz in JSON text."""

    name = "exotel"

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or random_hex(32)
        identity.call_id = identity.call_id or random_hex(32)
        identity.account_id = identity.account_id or "acc" + random_hex(12)

    def handshake(self) -> list[str]:
        i = self.identity
        return [
            dumps({"event": "connected"}),
            dumps(
                {
                    "event": "start",
                    "sequence_number": str(self._next_seq()),
                    "stream_sid": i.stream_id,
                    "start": {
                        "stream_sid": i.stream_id,
                        "call_sid": i.call_id,
                        "account_sid": i.account_id,
                        "from": i.from_number,
                        "to": i.to_number,
                        "custom_parameters": dict(i.custom_parameters),
                        "media_format": {
                            "encoding": "audio/x-raw",
                            "sample_rate": "8000",
                            "bit_rate": "16",
                        },
                    },
                }
            ),
        ]

    def media(self, pcm: bytes, timestamp_ms: int) -> str:
        return dumps(
            {
                "event": "media",
                "sequence_number": str(self._next_seq()),
                "stream_sid": self.identity.stream_id,
                "media": {
                    "chunk": str(self._next_chunk()),
                    "timestamp": str(timestamp_ms),
                    "payload": b64(pcm),
                },
            }
        )

    def dtmf(self, digit: str) -> str:
        return dumps(
            {
                "event": "dtmf",
                "sequence_number": str(self._next_seq()),
                "stream_sid": self.identity.stream_id,
                "dtmf": {"digit": digit, "duration": "200"},
            }
        )

    def mark_ack(self, event: ServerEvent) -> str:
        return dumps(
            {
                "event": "mark",
                "sequence_number": str(self._next_seq()),
                "stream_sid": self.identity.stream_id,
                "mark": {"name": event.name},
            }
        )

    def stop(self) -> str:
        i = self.identity
        return dumps(
            {
                "event": "stop",
                "sequence_number": str(self._next_seq()),
                "stream_sid": i.stream_id,
                "stop": {"call_sid": i.call_id, "account_sid": i.account_id, "reason": "callended"},
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
            return ServerEvent("audio", pcm=audio[: len(audio) // 2 * 2], raw=message)
        if event == "clear":
            return ServerEvent("clear", raw=message)
        if event == "mark":
            name = (message.get("mark") or {}).get("name")
            if isinstance(name, str):
                return ServerEvent("mark", name=name, raw=message)
            return ServerEvent("invalid", raw=message)
        return ServerEvent("other", raw=message)
