"""Real speech for the load generator: eSpeak NG utterances at 8 kHz, cached as WAV files.

Synthesized once with the ``espeakng-loader`` library through ctypes (benchmark-local on purpose:
it only has to make a handful of WAVs) and kept under ``benchmarks/.cache/``. Leading and
trailing silence is trimmed so an utterance's first and last 20 ms chunks carry speech: the load
generator takes "caller starts/stops speaking" from when those chunks are sent.
"""

from __future__ import annotations

import ctypes
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

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def _synthesize_raw(texts: tuple[str, ...]) -> tuple[int, list[np.ndarray]]:
    import espeakng_loader

    lib = ctypes.CDLL(str(espeakng_loader.get_library_path()))
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    rate = lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(espeakng_loader.get_data_path()).encode(), 0
    )
    if rate <= 0:
        raise RuntimeError("eSpeak NG failed to initialise")
    lib.espeak_SetVoiceByName(b"en-us")
    lib.espeak_SetParameter(_ESPEAK_RATE, 165, 0)
    chunks: list[np.ndarray] = []

    def collect(wav: ctypes._Pointer[ctypes.c_short], n: int, events: int) -> int:
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    callback = _CALLBACK(collect)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    out: list[np.ndarray] = []
    for text in texts:
        chunks.clear()
        data = text.encode()
        lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        out.append(np.concatenate(chunks) if chunks else np.zeros(0, np.int16))
    return rate, out


def _to_8k(samples: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    pcm = soxr.resample(samples.astype(np.float32) / 32768.0, rate, RATE, quality="HQ")
    return np.clip(np.round(pcm * 32767.0), -32768, 32767).astype(np.int16)


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
        rate, raw = _synthesize_raw(UTTERANCES)
        for path, samples in zip(paths, raw, strict=True):
            pcm = _trim(_to_8k(samples, rate))
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
    """G.711 µ-law of PCM16 (vectorised; the generator encodes everything once up front)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


if __name__ == "__main__":
    for text, pcm in zip(UTTERANCES, load_utterances(), strict=True):
        print(f"{len(pcm) / 2 / RATE:5.2f} s  {text}")
