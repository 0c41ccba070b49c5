"""The WAV helper's output is read back by the stdlib ``wave`` module."""

from __future__ import annotations

import io
import wave

import pytest

from callpipe.audio.wav import WAV_HEADER_SIZE, pcm_to_wav
from callpipe.errors import ConfigurationError


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
