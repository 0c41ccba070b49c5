"""What the simulated caller can say: raw PCM, a WAV file, or text spoken by the local TTS."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np

from callpipe.audio.resample import resample_once
from callpipe.errors import ConfigurationError, MissingDependencyError

AudioSource = bytes | Path | str
"""PCM16 mono bytes at the call's rate, a WAV file path, or text to speak (eSpeak NG)."""


async def load_audio(source: AudioSource, sample_rate: int) -> bytes:
    """PCM16 mono at ``sample_rate`` for ``source`` (see :data:`AudioSource`)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return data[: len(data) // 2 * 2]
    if isinstance(source, Path):
        return read_wav(source, sample_rate)
    return await asyncio.to_thread(speak, source, sample_rate)


def read_wav(path: str | Path, sample_rate: int) -> bytes:
    """A 16-bit PCM WAV file as mono PCM16 at ``sample_rate`` (channels averaged)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ConfigurationError(f"{path}: only 16-bit PCM WAV files are supported")
        channels = w.getnchannels()
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
    samples = np.frombuffer(frames, dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    pcm = samples.tobytes()
    return pcm if rate == sample_rate else resample_once(pcm, rate, sample_rate)


def speak(text: str, sample_rate: int, voice: str = "en-us") -> bytes:
    """Text spoken by eSpeak NG (offline), PCM16 mono at ``sample_rate``."""
    try:
        from callpipe.audio.espeak import synthesize
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise MissingDependencyError("eSpeak NG (speaking text)", "espeak") from exc
    return bytes(synthesize(text, sample_rate, voice=voice))
