"""Real test speech: eSpeak NG text → 8 kHz PCM16, with the true voice boundaries measured."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from callpipe.audio.espeak import synthesize


@dataclass(frozen=True)
class Utterance:
    pcm: bytes
    seconds: float
    voice_start: float  # first 10 ms frame above -40 dBFS
    voice_end: float  # end of the last such frame


@functools.lru_cache(maxsize=32)
def speech_8k(text: str, rate_wpm: int = 165) -> Utterance:
    pcm = synthesize(text, 8000, rate_wpm=rate_wpm)
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    frames = samples[: len(samples) // 80 * 80].reshape(-1, 80)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    voiced = np.flatnonzero(20 * np.log10(rms) > -40.0)
    assert voiced.size, f"eSpeak produced no audible speech for {text!r}"
    return Utterance(
        pcm=pcm,
        seconds=len(samples) / 8000,
        voice_start=float(voiced[0]) * 0.01,
        voice_end=float(voiced[-1] + 1) * 0.01,
    )
