"""Real speech for the load generator: eSpeak NG utterances at 8 kHz, cached as WAV files.

Synthesized once with callpipe's own eSpeak NG binding (``callpipe.audio.espeak``; a second
ctypes binding of the same library in one process would replace its synthesis callback) and
kept under ``benchmarks/.cache/``. Leading and
trailing silence is trimmed so an utterance's first and last 20 ms chunks carry speech: the load
generator takes "caller starts/stops speaking" from when those chunks are sent.
"""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
RATE = 8000

#: Short and long utterances; the short ones make quick turns, the long ones long echoes to
#: barge in on.
UTTERANCES: tuple[str, ...] = (
    "Hello, I would like to check my balance.",
    "Yes.",
    "Can you tell me when my order will arrive?",
    "No, that is not right, I said the other account.",
    "Thank you very much.",
    "I moved last month, so the address you have is wrong.",
    "Okay, go ahead.",
    "What are your opening hours on Saturday and Sunday?",
)


def _trim(samples: np.ndarray, threshold: int = 300) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return samples
    return samples[loud[0] : loud[-1] + 1]


def _cache_path(index: int, text: str) -> Path:
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    return CACHE / f"utt{index:02d}-{digest}.wav"


def load_utterances() -> list[bytes]:
    """PCM16 mono 8 kHz of every utterance in :data:`UTTERANCES` (synthesized on first use)."""
    paths = [_cache_path(i, t) for i, t in enumerate(UTTERANCES)]
    if not all(p.exists() for p in paths):
        CACHE.mkdir(parents=True, exist_ok=True)
        from callpipe.audio.espeak import synthesize

        for path, text in zip(paths, UTTERANCES, strict=True):
            samples = np.frombuffer(synthesize(text, RATE, rate_wpm=165), dtype="<i2")
            pcm = _trim(samples)
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(RATE)
                w.writeframes(pcm.tobytes())
    result = []
    for path in paths:
        with wave.open(str(path), "rb") as w:
            result.append(w.readframes(w.getnframes()))
    return result


def pcm_to_ulaw(pcm: bytes) -> bytes:
    """G.711 µ-law of PCM16 (the generator encodes everything once up front)."""
    from callpipe.audio.g711 import pcm_to_ulaw as encode

    return encode(pcm)


if __name__ == "__main__":
    for text, pcm in zip(UTTERANCES, load_utterances(), strict=True):
        print(f"{len(pcm) / 2 / RATE:5.2f} s  {text}")
