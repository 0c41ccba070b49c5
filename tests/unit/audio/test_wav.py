"""The WAV writer's output is read back by the stdlib ``wave`` module; the readers walk
headers that are not 44 bytes."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from callpipe.audio.wav import (
    WAV_HEADER_SIZE,
    WAVE_FORMAT_MULAW,
    WavStreamReader,
    check_pcm16_mono,
    is_wav,
    pcm_to_wav,
    read_wav,
)
from callpipe.errors import ConfigurationError, ProtocolError


def _read(data: bytes) -> tuple[wave._wave_params, bytes]:
    with wave.open(io.BytesIO(data), "rb") as reader:
        return reader.getparams(), reader.readframes(reader.getnframes())


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 1), (24000, 2), (48000, 2)])
def test_parsed_back_by_wave(rate: int, channels: int) -> None:
    pcm = bytes(range(256)) * 5  # 1280 bytes: whole frames for mono and stereo
    data = pcm_to_wav(pcm, rate, channels)
    params, frames = _read(data)
    assert len(data) == WAV_HEADER_SIZE + len(pcm)
    assert (params.nchannels, params.sampwidth, params.framerate) == (channels, 2, rate)
    assert params.nframes == len(pcm) // (2 * channels)
    assert frames == pcm


def test_forty_ms_at_8k_is_684_bytes() -> None:
    assert len(pcm_to_wav(b"\x00" * 640, 8000)) == 684


@pytest.mark.parametrize(("size", "channels", "kept"), [(641, 1, 640), (643, 2, 640), (3, 2, 0)])
def test_partial_trailing_frame_dropped(size: int, channels: int, kept: int) -> None:
    pcm = bytes(i % 251 for i in range(size))
    params, frames = _read(pcm_to_wav(pcm, 8000, channels))
    assert frames == pcm[:kept]
    assert params.nframes == kept // (2 * channels)


def test_empty_chunk_is_a_valid_file() -> None:
    params, frames = _read(pcm_to_wav(b"", 16000))
    assert params.nframes == 0 and frames == b""


def test_riff_sizes() -> None:
    data = pcm_to_wav(b"\x01\x00" * 10, 8000)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    assert int.from_bytes(data[40:44], "little") == 20


def test_bad_rate_rejected() -> None:
    with pytest.raises(ConfigurationError):
        pcm_to_wav(b"", 0)


# ---------------------------------------------------------------------- reading


def _g711_wav(data: bytes, rate: int) -> bytes:
    """A u-law WAV as G.711 writers make it: an 18-byte fmt chunk and a fact chunk."""
    fmt = struct.pack("<HHIIHHH", WAVE_FORMAT_MULAW, 1, rate, rate, 1, 8, 0)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<II", 4, len(data)) + b"data" + struct.pack("<I", len(data))
    return b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data


def test_read_wav_walks_past_a_longer_header() -> None:
    fmt, data = read_wav(_g711_wav(b"\xff" * 80, 8000) + b"junk after the data")
    assert (fmt.tag, fmt.channels, fmt.sample_rate, fmt.bits) == (WAVE_FORMAT_MULAW, 1, 8000, 8)
    assert data == b"\xff" * 80
    with pytest.raises(ProtocolError, match="16-bit mono PCM"):
        check_pcm16_mono(fmt)


def test_read_wav_refuses_what_is_not_a_whole_wav() -> None:
    assert not is_wav(bytes(100))
    with pytest.raises(ProtocolError, match="not a WAV"):
        read_wav(bytes(100))
    with pytest.raises(ProtocolError, match="no data chunk"):
        read_wav(pcm_to_wav(bytes(8), 8000)[:36])


def test_stream_reader_and_read_wav_agree() -> None:
    wav = pcm_to_wav(bytes(range(100)), 24000)
    reader = WavStreamReader()
    streamed = b"".join(reader.feed(wav[i : i + 7]) for i in range(0, len(wav), 7))
    fmt, data = read_wav(wav)
    assert streamed == data == bytes(range(100))
    assert reader.sample_rate == fmt.sample_rate == 24000
