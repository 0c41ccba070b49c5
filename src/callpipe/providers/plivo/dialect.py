"""The Plivo dialect of the call simulator (what Plivo sends and expects)."""

from __future__ import annotations

import time
import uuid

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


class PlivoDialect(Dialect):
    """Plivo audio streams (bidirectional ``<Stream>``): µ-law 8 kHz; the bot sends
    ``playAudio``/``clearAudio``/``checkpoint``, Plivo answers ``playedStream``/``clearedAudio``.
    Plivo has no stop message: the socket closes."""

    name = "plivo"

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or str(uuid.uuid4())
        identity.call_id = identity.call_id or str(uuid.uuid4())
        identity.account_id = identity.account_id or "MA" + random_hex(18).upper()

    def _headers(self) -> str:
        return ";".join(f"{k}={v}" for k, v in self.identity.custom_parameters.items())

    def handshake(self) -> list[str]:
        i = self.identity
        return [
            dumps(
                {
                    "event": "start",
                    "sequenceNumber": self._next_seq(),
                    "start": {
                        "callId": i.call_id,
                        "streamId": i.stream_id,
                        "accountId": i.account_id,
                        "tracks": ["inbound"],
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                    },
                    "extra_headers": self._headers(),
                }
            )
        ]

    def media(self, pcm: bytes, timestamp_ms: int) -> str:
        return dumps(
            {
                "event": "media",
                "sequenceNumber": self._next_seq(),
                "streamId": self.identity.stream_id,
                "media": {
                    "track": "inbound",
                    "timestamp": str(int(time.time() * 1000)),
                    "chunk": self._next_chunk(),
                    "payload": b64(g711.pcm_to_ulaw(pcm)),
                },
                "extra_headers": self._headers(),
            }
        )

    def dtmf(self, digit: str) -> str:
        return dumps(
            {
                "event": "dtmf",
                "sequenceNumber": self._next_seq(),
                "streamId": self.identity.stream_id,
                "dtmf": {
                    "track": "inbound",
                    "digit": digit,
                    "timestamp": str(int(time.time() * 1000)),
                },
                "extra_headers": self._headers(),
            }
        )

    def mark_ack(self, event: ServerEvent) -> str:
        return dumps(
            {
                "event": "playedStream",
                "sequenceNumber": self._next_seq(),
                "streamId": self.identity.stream_id,
                "name": event.name,
            }
        )

    def clear_ack(self) -> str:
        return dumps(
            {
                "event": "clearedAudio",
                "sequenceNumber": self._next_seq(),
                "streamId": self.identity.stream_id,
            }
        )

    def parse(self, data: str | bytes) -> ServerEvent:
        message = self._load(data)
        if message is None:
            return ServerEvent("invalid", raw=data)
        event = message.get("event")
        if event == "playAudio":
            media = message.get("media") or {}
            audio = unb64(media.get("payload"))
            if audio is None:
                return ServerEvent("invalid", raw=message)
            content_type = media.get("contentType", "audio/x-mulaw")
            if content_type == "audio/x-l16":
                return ServerEvent("audio", pcm=audio[: len(audio) // 2 * 2], raw=message)
            return ServerEvent("audio", pcm=g711.ulaw_to_pcm(audio), raw=message)
        if event == "clearAudio":
            return ServerEvent("clear", raw=message)
        if event == "checkpoint":
            name = message.get("name")
            if isinstance(name, str):
                return ServerEvent("mark", name=name, raw=message)
            return ServerEvent("invalid", raw=message)
        return ServerEvent("other", raw=message)
