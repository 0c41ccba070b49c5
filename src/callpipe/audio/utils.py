"""Pipecat's ``audio.utils`` helpers, over callpipe's own DSP modules.

Sample format everywhere: 16-bit little-endian signed PCM, mono unless stated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from callpipe.audio.g711 import alaw_to_pcm as _alaw_to_pcm
from callpipe.audio.g711 import pcm_to_alaw as _pcm_to_alaw
from callpipe.audio.g711 import pcm_to_ulaw as _pcm_to_ulaw
from callpipe.audio.g711 import ulaw_to_pcm as _ulaw_to_pcm
from callpipe.audio.resamplers.base_audio_resampler import BaseAudioResampler
from callpipe.audio.resamplers.soxr_resampler import SOXRAudioResampler
from callpipe.audio.resamplers.soxr_stream_resampler import SOXRStreamAudioResampler
from callpipe.audio.volume import calculate_volume
from callpipe.audio.wav import pcm_to_wav

__all__ = [
    "SPEAKING_THRESHOLD",
    "alaw_to_pcm",
    "calculate_audio_volume",
    "create_default_resampler",
    "create_file_resampler",
    "create_stream_resampler",
    "exp_smoothing",
    "interleave_stereo_audio",
    "is_silence",
    "mix_audio",
    "pcm_to_alaw",
    "pcm_to_ulaw",
    "pcm_to_wav",
    "scale_audio",
    "ulaw_to_pcm",
]

SPEAKING_THRESHOLD = 20
"""Peak sample magnitude at or below which a chunk counts as silence (``is_silence``)."""


def create_stream_resampler(**kwargs: Any) -> BaseAudioResampler:
    """A resampler for consecutive chunks of one stream (keeps state between calls)."""
    return SOXRStreamAudioResampler(**kwargs)


def create_file_resampler(**kwargs: Any) -> BaseAudioResampler:
    """A resampler for whole clips (no state between calls)."""
    return SOXRAudioResampler(**kwargs)


create_default_resampler = create_file_resampler


def _samples(audio: bytes) -> np.ndarray[Any, np.dtype[np.int16]]:
    return np.frombuffer(audio, dtype="<i2", count=len(audio) // 2)


def mix_audio(audio1: bytes, audio2: bytes) -> bytes:
    """Sum two PCM chunks sample by sample (clipped); the shorter is padded with silence."""
    a, b = _samples(audio1), _samples(audio2)
    length = max(len(a), len(b))
    out = np.zeros(length, dtype=np.int32)
    out[: len(a)] += a
    out[: len(b)] += b
    return np.clip(out, -32768, 32767).astype("<i2").tobytes()


def scale_audio(audio: bytes, factor: float) -> bytes:
    """Multiply every sample by ``factor`` (clipped); 1.0 returns the input unchanged."""
    if factor == 1.0:
        return audio
    scaled = _samples(audio).astype(np.float32) * factor
    return bytes(np.clip(np.rint(scaled), -32768, 32767).astype("<i2").tobytes())


def interleave_stereo_audio(left_audio: bytes, right_audio: bytes) -> bytes:
    """Two mono chunks as one interleaved stereo chunk (cut to the shorter one)."""
    left, right = _samples(left_audio), _samples(right_audio)
    length = min(len(left), len(right))
    stereo = np.empty(length * 2, dtype="<i2")
    stereo[0::2] = left[:length]
    stereo[1::2] = right[:length]
    return stereo.tobytes()


def calculate_audio_volume(audio: bytes | bytearray | memoryview, sample_rate: int) -> float:
    """Loudness in [0, 1] (callpipe's RMS scale, see :mod:`callpipe.audio.volume`)."""
    return calculate_volume(bytes(audio), sample_rate)


def exp_smoothing(value: float, prev_value: float, factor: float) -> float:
    """Exponential smoothing: ``prev + factor × (value − prev)``."""
    return prev_value + factor * (value - prev_value)


def is_silence(pcm_bytes: bytes) -> bool:
    """True when no sample exceeds :data:`SPEAKING_THRESHOLD` in magnitude."""
    samples = _samples(pcm_bytes)
    return not len(samples) or int(np.abs(samples.astype(np.int32)).max()) <= SPEAKING_THRESHOLD


async def _convert(
    audio: bytes, in_rate: int, out_rate: int, resampler: BaseAudioResampler
) -> bytes:
    return await resampler.resample(audio, in_rate, out_rate) if in_rate != out_rate else audio


async def ulaw_to_pcm(
    ulaw_bytes: bytes, in_rate: int, out_rate: int, resampler: BaseAudioResampler
) -> bytes:
    """Decode µ-law at ``in_rate`` to PCM at ``out_rate``."""
    return await _convert(_ulaw_to_pcm(ulaw_bytes), in_rate, out_rate, resampler)


async def pcm_to_ulaw(
    pcm_bytes: bytes, in_rate: int, out_rate: int, resampler: BaseAudioResampler
) -> bytes:
    """Encode PCM at ``in_rate`` to µ-law at ``out_rate``."""
    return _pcm_to_ulaw(await _convert(pcm_bytes, in_rate, out_rate, resampler))


async def alaw_to_pcm(
    alaw_bytes: bytes, in_rate: int, out_rate: int, resampler: BaseAudioResampler
) -> bytes:
    """Decode A-law at ``in_rate`` to PCM at ``out_rate``."""
    return await _convert(_alaw_to_pcm(alaw_bytes), in_rate, out_rate, resampler)


async def pcm_to_alaw(
    pcm_bytes: bytes, in_rate: int, out_rate: int, resampler: BaseAudioResampler
) -> bytes:
    """Encode PCM at ``in_rate`` to A-law at ``out_rate``."""
    return _pcm_to_alaw(await _convert(pcm_bytes, in_rate, out_rate, resampler))


def detect_speech_onset(
    pcm: bytes,
    sample_rate: int,
    num_channels: int = 1,
    *,
    frame_ms: float = 10.0,
    hop_ms: float = 1.0,
    threshold_db: float = -40.0,
    min_voiced_ms: float = 50.0,
) -> int | None:
    """The sample (per channel) where sustained sound starts in 16-bit PCM, or None when the
    audio so far has none that lasted ``min_voiced_ms`` (call again with more audio).

    Each ``frame_ms`` window, every ``hop_ms``, is loud when its RMS without the DC offset is
    above ``threshold_db`` (dB of full scale); the onset is the start of the first run of loud
    windows spanning ``min_voiced_ms``. An energy window ignores single loud samples, and the
    minimum run ignores clicks. Channels are averaged first.
    """
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % (2 * num_channels)], dtype="<i2")
    mono = samples.astype(np.float64)
    if num_channels > 1:
        mono = mono.reshape(-1, num_channels).mean(axis=1)
    window = max(1, int(sample_rate * frame_ms / 1000))
    hop = max(1, int(sample_rate * hop_ms / 1000))
    if len(mono) < window:
        return None
    # Windowed sums of x and x^2 from running sums: the mean-removed power of every window.
    sums = np.concatenate(([0.0], np.cumsum(mono)))
    squares = np.concatenate(([0.0], np.cumsum(mono * mono)))
    starts = np.arange(0, len(mono) - window + 1, hop)
    mean = (sums[starts + window] - sums[starts]) / window
    power = (squares[starts + window] - squares[starts]) / window - mean * mean
    floor = (32768.0 * 10 ** (threshold_db / 20)) ** 2
    loud = power > floor
    needed = max(1, int(np.ceil(min_voiced_ms / hop_ms)))
    run = 0
    for index in np.flatnonzero(loud):
        run = run + 1 if run and loud[index - 1] else 1
        if run >= needed:
            # The first loud window holds the onset: its first sample above the threshold.
            first = int(starts[index - needed + 1])
            segment = mono[first : first + window]
            segment = np.abs(segment - np.median(segment))  # (a median ignores the sound)
            above = np.flatnonzero(segment > np.sqrt(floor))
            return first + (int(above[0]) if len(above) else 0)
    return None
