"""The Genesys dialect of the call simulator: Genesys Cloud's side of an AudioHook session.

It opens with ``open`` (a stereo and a mono PCMU offer), streams nothing until the bot answers
``opened``, then sends binary PCMU frames of the accepted media (the caller on ``external``,
silence on ``internal``), ``dtmf`` for key presses and ``close`` when the caller hangs up. It
answers the bot's ``disconnect`` with ``close``, ``pause`` with ``paused``, ``resume`` with
``resumed``, closes the socket on ``closed``, and reads a ``barge_in`` event as a clear. Every
bot message is checked against the protocol (version, session id, ``seq`` counting up by one,
``clientseq`` not ahead of what was sent); a violation is an ``invalid`` event.
"""

from __future__ import annotations

import uuid
from typing import Any

from callpipe.audio import g711
from callpipe.providers.dialect import CallIdentity, Dialect, EventKind, ServerEvent, dumps
from callpipe.serializers._audiohook import PROTOCOL_VERSION, format_duration

OFFERED_MEDIA: list[dict[str, Any]] = [
    {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000},
    {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
]
_ULAW_SILENCE = b"\xff"


class GenesysDialect(Dialect):
    """Genesys Cloud (Audio Connector / AudioHook) streaming to the bot."""

    name = "genesys"

    def __init__(self, identity: CallIdentity | None = None) -> None:
        super().__init__(identity)
        self.seq = 0
        self.server_seq = 0
        self.samples = 0
        self.channels: list[str] = []
        self.paused = False
        self.organization_id = str(uuid.uuid5(uuid.NAMESPACE_URL, self.identity.account_id))
        self.offered: list[dict[str, Any]] = [dict(m) for m in OFFERED_MEDIA]

    @property
    def media_flowing(self) -> bool:
        return bool(self.channels) and not self.paused

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or str(uuid.uuid4())  # the session id
        identity.call_id = identity.call_id or str(uuid.uuid4())  # the conversation id
        identity.account_id = identity.account_id or str(uuid.uuid4())

    def message(self, type_: str, parameters: dict[str, Any] | None = None) -> str:
        """A client message with the next ``seq``, ``serverseq`` and the stream ``position``."""
        self.seq += 1
        return dumps(
            {
                "version": PROTOCOL_VERSION,
                "id": self.identity.stream_id,
                "type": type_,
                "seq": self.seq,
                "serverseq": self.server_seq,
                "position": format_duration(self.samples / self.sample_rate),
                "parameters": parameters if parameters is not None else {},
            }
        )

    def handshake(self) -> list[str]:
        i = self.identity
        parameters: dict[str, Any] = {
            "organizationId": self.organization_id,
            "conversationId": i.call_id,
            "participant": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, i.from_number)),
                "ani": i.from_number,
                "aniName": "",
                "dnis": i.to_number,
            },
            "media": self.offered,
            "language": "en-US",
        }
        if i.custom_parameters:
            parameters["inputVariables"] = dict(i.custom_parameters)
        return [self.message("open", parameters)]

    def media(self, pcm: bytes, timestamp_ms: int) -> bytes:
        ulaw = g711.pcm_to_ulaw(pcm)
        self.samples += len(ulaw)
        if len(self.channels) < 2:
            return ulaw
        silence = _ULAW_SILENCE * len(ulaw)
        tracks = [ulaw if c == "external" else silence for c in self.channels]
        return bytes(b for frame in zip(*tracks, strict=True) for b in frame)

    def dtmf(self, digit: str) -> str:
        return self.message("dtmf", {"digit": digit})

    def stop(self) -> str:
        return self.message("close", {"reason": "end"})

    def parse(self, data: str | bytes) -> ServerEvent:
        if isinstance(data, bytes):
            if not self.channels:
                return ServerEvent("invalid", raw="audio before opened")
            return ServerEvent("audio", pcm=g711.ulaw_to_pcm(data))
        message = self._load(data)
        if message is None:
            return ServerEvent("invalid", raw=data)
        problem = self._check(message)
        if problem is not None:
            return ServerEvent("invalid", raw=f"{problem}: {data[:80]}")
        return self._on(str(message["type"]), message)

    def _check(self, message: dict[str, Any]) -> str | None:
        if message.get("version") != PROTOCOL_VERSION:
            return "version"
        if message.get("id") != self.identity.stream_id:
            return "session id"
        seq, clientseq = message.get("seq"), message.get("clientseq")
        if seq != self.server_seq + 1:
            return f"seq {seq!r} after {self.server_seq}"
        if not isinstance(clientseq, int) or clientseq > self.seq:
            return f"clientseq {clientseq!r} (sent {self.seq})"
        if not isinstance(message.get("type"), str) or not isinstance(
            message.get("parameters"), dict
        ):
            return "type/parameters"
        self.server_seq = seq
        return None

    def _on(self, type_: str, message: dict[str, Any]) -> ServerEvent:
        params: dict[str, Any] = message["parameters"]
        if type_ == "opened":
            media = params.get("media")
            if not isinstance(media, list) or len(media) != 1 or media[0] not in self.offered:
                return ServerEvent("invalid", raw=f"opened without one offered media: {media!r}")
            self.channels = list(media[0]["channels"])
            self.paused = params.get("startPaused") is True
            return ServerEvent("other", raw=message)
        if type_ == "event":
            entities = params.get("entities")
            kinds = [e.get("type") for e in entities if isinstance(e, dict)] if entities else []
            kind: EventKind = "clear" if "barge_in" in kinds else "other"
            return ServerEvent(kind, raw=message)
        if type_ == "disconnect":
            return ServerEvent("other", raw=message, reply=self.message("close", _CLOSE))
        if type_ == "pause":
            self.paused = True
            return ServerEvent("other", raw=message, reply=self.message("paused"))
        if type_ == "resume":
            self.paused = False
            position = format_duration(self.samples / self.sample_rate)
            resumed = {"start": position, "discarded": "PT0S"}
            return ServerEvent("other", raw=message, reply=self.message("resumed", resumed))
        if type_ == "closed":
            return ServerEvent("other", raw=message, close=True)
        if type_ in ("pong", "updated", "reconnect"):
            return ServerEvent("other", raw=message)
        return ServerEvent("invalid", raw=f"not a server message: {type_[:20]}")


_CLOSE = {"reason": "disconnect"}
