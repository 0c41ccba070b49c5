"""AWS event-stream messages (``application/vnd.amazon.eventstream``): the encoder, and the
decoder botocore ships.

A message is a prelude (total length and headers length, big-endian 32-bit each) with its
CRC32, the headers, the payload and a CRC32 of everything before it
(https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html). Botocore decodes such
messages (:class:`botocore.eventstream.EventStreamBuffer`, which checks both CRCs) but has no
encoder, so :func:`encode_message` is written here: callpipe's Transcribe service sends its
audio with it, and the Bedrock and Transcribe fakes their answers. Only string headers (type
7) are written; they are all a client or these fakes need.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

from callpipe.errors import MissingDependencyError

_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
_AUDIO_HEADERS = {
    ":message-type": "event",
    ":event-type": "AudioEvent",
    ":content-type": "application/octet-stream",
}
"""The headers of an audio event, in the order AWS's Transcribe streaming SDK writes them."""


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """``headers`` as event-stream string headers: name length (1 byte), name, type 7, value
    length (2 bytes), value."""
    encoded = bytearray()
    for name, value in headers.items():
        key, raw = name.encode(), value.encode()
        encoded += struct.pack(">B", len(key)) + key + struct.pack(">BH", _STRING, len(raw)) + raw
    return bytes(encoded)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message with string ``headers`` and ``payload``."""
    encoded = encode_headers(headers)
    prelude = _PRELUDE.pack(12 + len(encoded) + len(payload) + 4, len(encoded))
    prelude += _CRC.pack(zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + _CRC.pack(zlib.crc32(message))


def audio_event(pcm: bytes) -> bytes:
    """Transcribe's ``AudioEvent`` carrying ``pcm`` (empty: the end of the audio stream)."""
    return encode_message(_AUDIO_HEADERS, pcm)


END_OF_STREAM = audio_event(b"")
"""The empty ``AudioEvent`` that ends a Transcribe stream."""


def event_buffer() -> Any:
    """A new :class:`botocore.eventstream.EventStreamBuffer` (``add_data``, then iterate for
    the complete messages, each with ``headers`` and ``payload``)."""
    try:
        from botocore.eventstream import EventStreamBuffer
    except ImportError as exc:
        raise MissingDependencyError("botocore (AWS event streams)", "aws") from exc
    return EventStreamBuffer()


def decode_messages(buffer: Any, data: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """``(headers, payload)`` of each message ``data`` completes in ``buffer`` (see
    :func:`event_buffer`); botocore's ``ParserError`` (e.g. a CRC mismatch) propagates."""
    buffer.add_data(data)
    for message in buffer:
        yield dict(message.headers), bytes(message.payload)
