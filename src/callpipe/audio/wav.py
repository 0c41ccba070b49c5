"""A complete RIFF/WAVE file around one chunk of 16-bit PCM.

Some WebSocket clients (browsers, test rigs) want every audio message to be a playable file, so
the output transport can wrap each chunk. The header is built with one ``struct.pack``; the
``wave`` module would allocate a file object per chunk.
"""

from __future__ import annotations

import struct

from callpipe.errors import ConfigurationError

__all__ = ["WAV_HEADER_SIZE", "pcm_to_wav"]

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
