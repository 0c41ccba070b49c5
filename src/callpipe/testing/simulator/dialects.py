"""Provider dialects: what each telephony provider sends on its media WebSocket, and how it
reads what the bot sends back.

A dialect is sans-I/O: it builds the provider's messages (handshake, media, DTMF, mark/checkpoint
acknowledgements, stop) from plain values and parses the bot's messages into
:class:`ServerEvent`. The shapes follow each provider's published media-stream documentation,
including the fields bots usually ignore (sequence numbers, chunk counters, timestamps), so a bot
tested against the simulator sees what it will see in production.
"""

from __future__ import annotations

import binascii
import itertools
import json
import secrets
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from callpipe.audio import g711
from callpipe.errors import ConfigurationError

EventKind = Literal["audio", "clear", "mark", "other", "invalid"]


@dataclass(slots=True)
class ServerEvent:
    """One message from the bot, as the provider understands it."""

    kind: EventKind
    pcm: bytes = b""
    """Bot audio as PCM16 mono at the dialect's wire rate (``kind == "audio"``)."""
    name: str = ""
    """Mark/checkpoint name (``kind == "mark"``)."""
    ack: Any = None
    """Provider-specific data echoed in the acknowledgement (Vonage notify payload)."""
    raw: Any = None


@dataclass(slots=True)
class CallIdentity:
    """The ids and numbers a provider puts in its handshake (random unless given)."""

    stream_id: str = ""
    call_id: str = ""
    account_id: str = ""
    from_number: str = "+15550100001"
    to_number: str = "+15550100002"
    custom_parameters: dict[str, str] = field(default_factory=dict)


def _hex(n: int) -> str:
    return secrets.token_hex(n // 2)


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _unb64(payload: Any) -> bytes | None:
    if not isinstance(payload, str):
        return None
    try:
        return binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class Dialect(ABC):
    """One provider's side of the media WebSocket."""

    name: ClassVar[str]
    sample_rate: ClassVar[int] = 8000
    """Wire sample rate of the audio in both directions."""
    acks_marks_on_clear: ClassVar[bool] = True
    """On clear, pending marks are acknowledged at once (their audio will never play)."""

    def __init__(self, identity: CallIdentity | None = None) -> None:
        self.identity = identity or CallIdentity()
        self._seq = itertools.count(1)
        self._chunk = itertools.count(1)
        self._fill_identity(self.identity)

    @abstractmethod
    def _fill_identity(self, identity: CallIdentity) -> None:
        """Invent provider-shaped ids for fields left empty."""

    @abstractmethod
    def handshake(self) -> list[str]:
        """Messages sent right after the WebSocket opens (connected, start)."""

    @abstractmethod
    def media(self, pcm: bytes, timestamp_ms: int) -> str | bytes:
        """One packet of caller audio (PCM16 at ``sample_rate``) in the provider's format."""

    @abstractmethod
    def dtmf(self, digit: str) -> str:
        """A key press as the provider reports it."""

    def mark_ack(self, event: ServerEvent) -> str | None:
        """The acknowledgement for a played mark, or None if the provider sends none."""
        return None

    def clear_ack(self) -> str | None:
        """The acknowledgement for a clear, if the provider sends one."""
        return None

    def stop(self) -> str | None:
        """The message sent when the caller hangs up (None: the socket just closes)."""
        return None

    @abstractmethod
    def parse(self, data: str | bytes) -> ServerEvent:
        """Understand one message from the bot."""

    # helpers -----------------------------------------------------------------

    def _next_seq(self) -> int:
        return next(self._seq)

    def _next_chunk(self) -> int:
        return next(self._chunk)

    @staticmethod
    def _load(data: str | bytes) -> dict[str, Any] | None:
        if isinstance(data, bytes):
            return None
        try:
            message = json.loads(data)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None


class TwilioDialect(Dialect):
    """Twilio Media Streams (bidirectional ``<Connect><Stream>``): µ-law 8 kHz, JSON text."""

    name = "twilio"

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or "MZ" + _hex(32)
        identity.call_id = identity.call_id or "CA" + _hex(32)
        identity.account_id = identity.account_id or "AC" + _hex(32)

    def handshake(self) -> list[str]:
        i = self.identity
        return [
            _dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
            _dumps(
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
        return _dumps(
            {
                "event": "media",
                "sequenceNumber": str(self._next_seq()),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._next_chunk()),
                    "timestamp": str(timestamp_ms),
                    "payload": _b64(g711.pcm_to_ulaw(pcm)),
                },
                "streamSid": self.identity.stream_id,
            }
        )

    def dtmf(self, digit: str) -> str:
        return _dumps(
            {
                "event": "dtmf",
                "streamSid": self.identity.stream_id,
                "sequenceNumber": str(self._next_seq()),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def mark_ack(self, event: ServerEvent) -> str:
        return _dumps(
            {
                "event": "mark",
                "sequenceNumber": str(self._next_seq()),
                "streamSid": self.identity.stream_id,
                "mark": {"name": event.name},
            }
        )

    def stop(self) -> str:
        i = self.identity
        return _dumps(
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
            audio = _unb64((message.get("media") or {}).get("payload"))
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
        identity.call_id = identity.call_id or "v3:" + _hex(40)
        identity.account_id = identity.account_id or str(uuid.uuid4())

    def _encode(self, pcm: bytes) -> bytes:
        return g711.pcm_to_ulaw(pcm) if self.encoding == "PCMU" else g711.pcm_to_alaw(pcm)

    def _decode(self, data: bytes) -> bytes:
        return g711.ulaw_to_pcm(data) if self.encoding == "PCMU" else g711.alaw_to_pcm(data)

    def handshake(self) -> list[str]:
        i = self.identity
        return [
            _dumps({"event": "connected", "version": "1.0.0"}),
            _dumps(
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
        return _dumps(
            {
                "event": "media",
                "sequence_number": str(self._next_seq()),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._next_chunk()),
                    "timestamp": str(timestamp_ms),
                    "payload": _b64(self._encode(pcm)),
                },
                "stream_id": self.identity.stream_id,
            }
        )

    def dtmf(self, digit: str) -> str:
        return _dumps(
            {
                "event": "dtmf",
                "stream_id": self.identity.stream_id,
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "sequence_number": str(self._next_seq()),
                "dtmf": {"digit": digit},
            }
        )

    def mark_ack(self, event: ServerEvent) -> str:
        return _dumps(
            {
                "event": "mark",
                "sequence_number": str(self._next_seq()),
                "stream_id": self.identity.stream_id,
                "mark": {"name": event.name},
            }
        )

    def stop(self) -> str:
        i = self.identity
        return _dumps(
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
            audio = _unb64((message.get("media") or {}).get("payload"))
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


class PlivoDialect(Dialect):
    """Plivo audio streams (bidirectional ``<Stream>``): µ-law 8 kHz; the bot sends
    ``playAudio``/``clearAudio``/``checkpoint``, Plivo answers ``playedStream``/``clearedAudio``.
    Plivo has no stop message: the socket closes."""

    name = "plivo"

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or str(uuid.uuid4())
        identity.call_id = identity.call_id or str(uuid.uuid4())
        identity.account_id = identity.account_id or "MA" + _hex(18).upper()

    def _headers(self) -> str:
        return ";".join(f"{k}={v}" for k, v in self.identity.custom_parameters.items())

    def handshake(self) -> list[str]:
        i = self.identity
        return [
            _dumps(
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
        return _dumps(
            {
                "event": "media",
                "sequenceNumber": self._next_seq(),
                "streamId": self.identity.stream_id,
                "media": {
                    "track": "inbound",
                    "timestamp": str(int(time.time() * 1000)),
                    "chunk": self._next_chunk(),
                    "payload": _b64(g711.pcm_to_ulaw(pcm)),
                },
                "extra_headers": self._headers(),
            }
        )

    def dtmf(self, digit: str) -> str:
        return _dumps(
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
        return _dumps(
            {
                "event": "playedStream",
                "sequenceNumber": self._next_seq(),
                "streamId": self.identity.stream_id,
                "name": event.name,
            }
        )

    def clear_ack(self) -> str:
        return _dumps(
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
            audio = _unb64(media.get("payload"))
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


class ExotelDialect(Dialect):
    """Exotel Voicebot applet: base64 raw PCM16 (slin) 8 kHz in JSON text."""

    name = "exotel"

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or _hex(32)
        identity.call_id = identity.call_id or _hex(32)
        identity.account_id = identity.account_id or "acc" + _hex(12)

    def handshake(self) -> list[str]:
        i = self.identity
        return [
            _dumps({"event": "connected"}),
            _dumps(
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
        return _dumps(
            {
                "event": "media",
                "sequence_number": str(self._next_seq()),
                "stream_sid": self.identity.stream_id,
                "media": {
                    "chunk": str(self._next_chunk()),
                    "timestamp": str(timestamp_ms),
                    "payload": _b64(pcm),
                },
            }
        )

    def dtmf(self, digit: str) -> str:
        return _dumps(
            {
                "event": "dtmf",
                "sequence_number": str(self._next_seq()),
                "stream_sid": self.identity.stream_id,
                "dtmf": {"digit": digit, "duration": "200"},
            }
        )

    def mark_ack(self, event: ServerEvent) -> str:
        return _dumps(
            {
                "event": "mark",
                "sequence_number": str(self._next_seq()),
                "stream_sid": self.identity.stream_id,
                "mark": {"name": event.name},
            }
        )

    def stop(self) -> str:
        i = self.identity
        return _dumps(
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
            audio = _unb64((message.get("media") or {}).get("payload"))
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
        return [_dumps(message)]

    def media(self, pcm: bytes, timestamp_ms: int) -> bytes:
        return pcm

    def dtmf(self, digit: str) -> str:
        return _dumps({"event": "websocket:dtmf", "digit": digit, "duration": 260})

    def mark_ack(self, event: ServerEvent) -> str:
        return _dumps({"event": "websocket:notify", "payload": event.ack})

    def clear_ack(self) -> str:
        return _dumps({"event": "websocket:cleared"})

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


DIALECTS: dict[str, type[Dialect]] = {
    d.name: d for d in (TwilioDialect, TelnyxDialect, PlivoDialect, ExotelDialect, VonageDialect)
}


def make_dialect(provider: str, identity: CallIdentity | None = None) -> Dialect:
    """The dialect for ``provider`` (``twilio``, ``telnyx``, ``plivo``, ``exotel``, ``vonage``)."""
    try:
        cls = DIALECTS[provider.lower()]
    except KeyError:
        raise ConfigurationError(
            f"unknown provider {provider!r}; choose one of {', '.join(DIALECTS)}"
        ) from None
    return cls(identity)
