"""The jambonz dialect of the call simulator: the ``listen`` verb's WebSocket.

One text frame of call attributes first, then caller audio as binary L16 frames; DTMF as JSON
text frames (``passDtmf``). The bot's binary frames are audio and ``killAudio`` is a clear.
jambonz acknowledges no marks, and has no stop message: the socket closes.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from callpipe.providers.dialect import CallIdentity, Dialect, ServerEvent, dumps


class JambonzDialect(Dialect):
    """jambonz ``listen`` with ``bidirectionalAudio.streaming``: L16 8 kHz both ways."""

    name = "jambonz"
    subprotocols: ClassVar[tuple[str, ...]] = ("audio.jambonz.org",)

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.call_id = identity.call_id or str(uuid.uuid4())
        identity.stream_id = identity.stream_id or identity.call_id
        identity.account_id = identity.account_id or str(uuid.uuid4())

    def handshake(self) -> list[str]:
        i = self.identity
        preamble: dict[str, Any] = {
            "sampleRate": self.sample_rate,
            "mixType": "mono",
            "callSid": i.call_id,
            "direction": "inbound",
            "from": i.from_number,
            "to": i.to_number,
            "callId": str(uuid.uuid5(uuid.NAMESPACE_URL, i.call_id)),
            "sipStatus": 200,
            "callStatus": "in-progress",
            "accountSid": i.account_id,
            "applicationSid": str(uuid.uuid5(uuid.NAMESPACE_OID, i.account_id)),
        }
        preamble.update(i.custom_parameters)
        return [dumps(preamble)]

    def media(self, pcm: bytes, timestamp_ms: int) -> bytes:
        return pcm

    def dtmf(self, digit: str) -> str:
        return dumps({"event": "dtmf", "dtmf": digit, "duration": 1600})

    def parse(self, data: str | bytes) -> ServerEvent:
        if isinstance(data, bytes):
            return ServerEvent("audio", pcm=data[: len(data) // 2 * 2])
        message = self._load(data)
        if message is None:
            return ServerEvent("invalid", raw=data)
        if message.get("type") == "killAudio":
            return ServerEvent("clear", raw=message)
        return ServerEvent("other", raw=message)
