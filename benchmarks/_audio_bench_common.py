"""Shared loop shapes for audio_bench.py and its Pipecat twin (no callpipe or pipecat imports).

Both sides time the same operations on the same inputs with the same harness, so the only
difference is the library under test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

RESAMPLE_PAIRS = [(8000, 16000), (16000, 8000), (24000, 8000), (8000, 24000), (48000, 8000)]
VAD_CALLS = [1, 10, 50, 100]
PACKET_BYTES = 160  # 20 ms of 8 kHz μ-law
BULK_BYTES = 1 << 20


def best_rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of ``fn``, best of 5 runs (a shared machine has noisy neighbours)."""
    best = 0.0
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while True:
            for _ in range(32):
                fn()
            n += 32
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


async def best_rate_async(fn: Callable[[], Awaitable[Any]], seconds: float) -> float:
    return await best_rate_each(lambda _: fn(), [None] * 32, seconds)


async def best_rate_each(
    fn: Callable[[Any], Awaitable[Any]], args: list[Any], seconds: float
) -> float:
    """Calls per second of ``await fn(arg)`` over ``args`` in turn, best of 5 runs."""
    best = 0.0
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while True:
            for a in args:
                await fn(a)
            n += len(args)
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def noise_pcm(rate: int, secs: float, seed: int = 0) -> bytes:
    """Deterministic speech-level noise (PCM16) without numpy differences between venvs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(rate * secs)) * 3000).astype("<i2").tobytes()


async def vad_cpu_per_window(
    analyzers: list[Any], audio: bytes, chunk_bytes: int, rounds: int = 1
) -> tuple[float, float]:
    """Feed every analyzer the audio in lock-step 20 ms chunks (as concurrent calls arrive).

    Returns (CPU µs, wall µs) per call per chunk. CPU is process time, so it includes Pipecat's
    executor threads.
    """
    chunks = [audio[i : i + chunk_bytes] for i in range(0, len(audio), chunk_bytes)]
    n = len(analyzers)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        for k in range(len(chunks)):
            await asyncio.gather(
                *(a.analyze_audio(chunks[(k + j) % len(chunks)]) for j, a in enumerate(analyzers))
            )
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    per = n * len(chunks) * rounds
    return cpu / per * 1e6, wall / per * 1e6
