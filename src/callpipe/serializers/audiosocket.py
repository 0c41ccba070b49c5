"""Asterisk AudioSocket (``res_audiosocket``): a TCP stream of typed, length-prefixed messages.

Every message is a 3-byte header (one byte *kind*, a big-endian uint16 payload length) and the
payload. Asterisk's ``AudioSocket(uuid,host:port)`` dialplan application (or ARI
``externalMedia`` with ``encapsulation=audiosocket``) connects to the bot and sends:

- ``0x01`` UUID: 16 bytes, once, first (the call's id);
- ``0x10`` audio: signed linear 16-bit, 8 kHz, mono, little-endian (320 bytes per 20 ms);
  newer Asterisk headers also define ``0x11``, the same at 16 kHz (once the peer sends it, the
  bot answers in it too);
- ``0x03`` DTMF: one ASCII digit;
- ``0x00`` hang-up (closing the socket means the same);
- ``0xff`` error: an optional code (``0x01`` the caller hung up, ``0x02`` frame forwarding,
  ``0x04`` memory).

The bot sends ``0x10`` audio (Asterisk plays what it gets at once: the sender paces it, which
the output transport does) and ``0x00`` to hang up. There is no clear and no mark: a barge-in
stops sending (at most one 20 ms packet is in flight), and playout is estimated from the clock.

This module is the sans-I/O codec and the serializer the transport uses; one WebSocket-shaped
"message" is one whole AudioSocket message, header included (see
``callpipe.transports.network.audiosocket``, which frames the TCP stream).
"""

from __future__ import annotations

import logging
import uuid
from typing import Final

from callpipe.frames.frames import (
    Frame,
    InputDTMFFrame,
    InterruptionFrame,
    StreamStoppedFrame,
    TransportMessageFrame,
    TransportMessageUrgentFrame,
)
from callpipe.log import mask
from callpipe.serializers import _wire
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers._wire import Malformed, PhoneAudio
from callpipe.serializers.base_serializer import FrameSerializerType

logger = logging.getLogger(__name__)

KIND_HANGUP: Final = 0x00
KIND_UUID: Final = 0x01
KIND_DTMF: Final = 0x03
KIND_AUDIO: Final = 0x10
KIND_AUDIO_SLIN16: Final = 0x11
"""16 kHz signed linear audio (``AST_AUDIOSOCKET_KIND_AUDIO_SLIN16`` in newer Asterisk headers)."""
KIND_ERROR: Final = 0xFF
HEADER_BYTES: Final = 3
MAX_PAYLOAD: Final = 0xFFFF
SAMPLE_RATE: Final = 8000
HANGUP_MESSAGE: Final = b"\x00\x00\x00"

ERRORS: Final = {0x01: "caller hung up", 0x02: "frame forwarding error", 0x04: "memory error"}
"""Asterisk-generated error codes (the ``0xff`` payload)."""


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One message: kind, big-endian length, payload (at most 65535 bytes)."""
    if not 0 <= kind <= 0xFF or len(payload) > MAX_PAYLOAD:
        raise ValueError("AudioSocket kind is one byte and payloads at most 65535 bytes")
    return bytes((kind, len(payload) >> 8, len(payload) & 0xFF)) + payload


def parse_header(header: bytes) -> tuple[int, int]:
    """``(kind, payload length)`` of a 3-byte header."""
    if len(header) != HEADER_BYTES:
        raise ValueError("an AudioSocket header is 3 bytes")
    return header[0], (header[1] << 8) | header[2]


def parse_uuid(payload: bytes) -> str | None:
    """The call id of a UUID message's payload (canonical text form), or None if malformed."""
    if len(payload) != 16:
        return None
    return str(uuid.UUID(bytes=payload))


class AudioSocketFrameSerializer(TelephonySerializer):
    """Serializer for one AudioSocket connection (messages include their 3-byte header)."""

    _binary_audio = True

    def __init__(
        self, call_uuid: str | None = None, params: TelephonySerializer.InputParams | None = None
    ) -> None:
        p = params if params is not None else self.InputParams()
        super().__init__(p, "pcm16", SAMPLE_RATE)
        self.call_uuid = call_uuid
        self._out_kind = KIND_AUDIO

    @property
    def type(self) -> FrameSerializerType:
        return FrameSerializerType.BINARY

    @property
    def call_id(self) -> str:
        return self.call_uuid or "-"

    preferred_10ms_chunks = 2
    """20 ms packets (320 bytes): what Asterisk sends and plays."""
    coalesce_packets = False
    """One 20 ms packet per message: AudioSocket has no clear command, so nothing may be sent
    ahead of its time, and every AudioSocket peer frames audio in 20 ms packets."""

    def _media(self, payload: bytes) -> bytes:
        return encode(self._out_kind, payload)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, InterruptionFrame):
            self._audio.reset_out()
            return None  # nothing queued at Asterisk to clear: we stop sending
        if isinstance(frame, TransportMessageFrame | TransportMessageUrgentFrame):
            return None  # AudioSocket carries no application messages
        return await super().serialize(frame)

    async def deserialize(self, data: str | bytes) -> Frame | list[Frame] | None:
        try:
            if isinstance(data, str) or len(data) < HEADER_BYTES:
                raise Malformed("short_message", f"{len(data)} bytes")
            kind, length = parse_header(bytes(data[:HEADER_BYTES]))
            payload = bytes(data[HEADER_BYTES:])
            if length != len(payload):
                raise Malformed("bad_length", f"header {length}, payload {len(payload)}")
            return self._inbound(kind, payload)
        except Exception as exc:  # never let one message end the call
            self._refuse(exc)
        return None

    def _inbound(self, kind: int, payload: bytes) -> Frame | None:
        if kind == KIND_AUDIO or kind == KIND_AUDIO_SLIN16:
            if not payload:
                raise Malformed("missing_payload")
            if kind != self._out_kind:
                self._switch_rate(kind)
            return self._audio_frame(payload)
        if kind == KIND_DTMF:
            if len(payload) != 1:
                raise Malformed("bad_dtmf", f"{len(payload)} bytes")
            return InputDTMFFrame(button=_wire.keypad(chr(payload[0])))
        if kind == KIND_HANGUP:
            return StreamStoppedFrame()
        if kind == KIND_ERROR:
            code = payload[0] if payload else 0
            logger.info(
                "audiosocket call %s: Asterisk error %#04x (%s)",
                mask(self.call_id),
                code,
                ERRORS.get(code, "application-specific"),
            )
            return StreamStoppedFrame()
        if kind == KIND_UUID:
            if self.call_uuid is None:
                self.call_uuid = parse_uuid(payload)
            return None
        raise Malformed("unknown_kind", f"{kind:#04x}")

    def _switch_rate(self, kind: int) -> None:
        """The peer's audio kind sets the rate both ways (8 kHz ``0x10``, 16 kHz ``0x11``)."""
        rate = 16000 if kind == KIND_AUDIO_SLIN16 else SAMPLE_RATE
        logger.info("audiosocket call %s: audio is %d Hz", mask(self.call_id), rate)
        pipeline_rate = self._audio.pipeline_rate
        self._audio = PhoneAudio("pcm16", rate, self._params.resampler_clear_after_secs)
        self._audio.set_pipeline_rate(pipeline_rate)
        self._out_kind = kind
