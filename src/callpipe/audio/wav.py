"""WAV files: one around a chunk of 16-bit PCM, and the samples out of one.

Some WebSocket clients (browsers, test rigs) want every audio message to be a playable file, so
the output transport can wrap each chunk. The header is built with one ``struct.pack``; the
``wave`` module would allocate a file object per chunk.

Speech APIs answer with WAV files: :func:`read_wav` takes a whole one apart and
:class:`WavStreamReader` reads one as its bytes arrive. Both walk the RIFF chunks to ``data``
(the header is not always 44 bytes: G.711 files have a longer ``fmt`` and a ``fact`` chunk,
others a ``LIST``); a data size of 0 or 0xFFFFFFFF (a stream that did not know its length)
means "to the end".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from callpipe.errors import ConfigurationError, ProtocolError

__all__ = [
    "WAVE_FORMAT_ALAW",
    "WAVE_FORMAT_MULAW",
    "WAVE_FORMAT_PCM",
    "WAV_HEADER_SIZE",
    "WavFormat",
    "WavStreamReader",
    "check_pcm16_mono",
    "is_wav",
    "pcm_to_wav",
    "read_wav",
]

WAV_HEADER_SIZE = 44
_SAMPLE_WIDTH = 2
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


def pcm_to_wav(pcm: bytes, sample_rate: int, num_channels: int = 1) -> bytes:
    """Return ``pcm`` as a WAV file: a 44-byte header (PCM, 16-bit) followed by the samples.

    Trailing bytes that do not complete a sample frame (2 × ``num_channels`` bytes) are dropped,
    so the header's data length always describes whole frames.
    """
    if sample_rate <= 0 or num_channels <= 0:
        raise ConfigurationError(
            f"sample_rate and num_channels must be positive, got {sample_rate}, {num_channels}"
        )
    block_align = _SAMPLE_WIDTH * num_channels
    data_len = len(pcm) - len(pcm) % block_align
    header = _HEADER.pack(
        b"RIFF",
        36 + data_len,
        b"WAVE",
        b"fmt ",
        16,  # fmt chunk size for plain PCM
        1,  # WAVE_FORMAT_PCM
        num_channels,
        sample_rate,
        sample_rate * block_align,  # byte rate
        block_align,
        _SAMPLE_WIDTH * 8,
        b"data",
        data_len,
    )
    return header + bytes(pcm[:data_len])


WAVE_FORMAT_PCM = 1
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class WavFormat:
    """What a ``fmt`` chunk says (``tag``: the sub-format's for WAVE_FORMAT_EXTENSIBLE)."""

    tag: int
    channels: int
    sample_rate: int
    bits: int


def is_wav(audio: bytes) -> bool:
    """True when ``audio`` starts as a RIFF/WAVE file."""
    return len(audio) >= 12 and audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"


def _read_fmt(chunk: bytes) -> WavFormat:
    if len(chunk) < 16:
        raise ProtocolError("the WAV fmt chunk is too short")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(chunk) >= 26:
        (tag,) = struct.unpack_from("<H", chunk, 24)
    return WavFormat(tag, channels, rate, bits)


def _find_data(head: bytes) -> tuple[WavFormat, int, int | None] | None:
    """``(format, offset of the samples, their size or None for "to the end")`` once ``head``
    holds every chunk before the samples; None while it does not. Raises ProtocolError for
    what is not a WAV file or has no format before its data."""
    if len(head) < 12:
        return None
    if not is_wav(head):
        raise ProtocolError(f"the audio is not a WAV file (starts {head[:12]!r})")
    fmt: WavFormat | None = None
    pos = 12
    while len(head) >= pos + 8:
        kind = head[pos : pos + 4]
        (size,) = struct.unpack_from("<I", head, pos + 4)
        pos += 8
        if kind == b"data":
            if fmt is None or fmt.sample_rate <= 0:
                raise ProtocolError("the WAV audio has no fmt chunk before its data")
            return fmt, pos, None if size in _UNKNOWN_SIZES else size
        if kind == b"fmt ":
            if len(head) < pos + size:
                return None
            fmt = _read_fmt(head[pos : pos + size])
        pos += size + (size & 1)  # chunks are padded to an even length
    return None


def read_wav(audio: bytes) -> tuple[WavFormat, bytes]:
    """The format and the samples of a whole WAV file (bytes after the data chunk dropped).

    Raises ProtocolError for anything else (or a file cut short before its samples)."""
    found = _find_data(audio)
    if found is None:
        raise ProtocolError("the WAV audio has no data chunk")
    fmt, start, size = found
    return fmt, audio[start : len(audio) if size is None else start + size]


def check_pcm16_mono(fmt: WavFormat) -> None:
    """Raise ProtocolError unless ``fmt`` is 16-bit mono PCM."""
    if (fmt.tag, fmt.channels, fmt.bits) != (WAVE_FORMAT_PCM, 1, 16):
        raise ProtocolError(
            f"unsupported WAV audio (format {fmt.tag}, {fmt.channels} channels, "
            f"{fmt.bits}-bit): 16-bit mono PCM expected"
        )


class WavStreamReader:
    """The samples of a 16-bit mono PCM WAV body as it arrives: the header is held until it is
    complete, then each chunk's samples are returned as they are. Anything else is a
    ``ProtocolError``; a stated data size is honoured (bytes after the data chunk are dropped).
    """

    MAX_HEADER = 64 * 1024

    def __init__(self) -> None:
        self.sample_rate = 0
        """The rate the header states (0 until the header is read)."""
        self._head = b""
        self._left: int | None = None
        self._in_data = False

    def feed(self, chunk: bytes) -> bytes:
        """The samples in ``chunk`` (b"" while the header is still incomplete)."""
        if not self._in_data:
            self._head += chunk
            found = _find_data(self._head)
            if found is None:
                if len(self._head) > self.MAX_HEADER:
                    raise ProtocolError("no data chunk in the first 64 KB of the WAV body")
                return b""
            fmt, start, self._left = found
            check_pcm16_mono(fmt)
            self.sample_rate = fmt.sample_rate
            self._in_data = True
            chunk, self._head = self._head[start:], b""
        if self._left is not None:
            chunk = chunk[: self._left]
            self._left -= len(chunk)
        return chunk
