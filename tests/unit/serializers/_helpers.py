"""Helpers for the serializer tests: fixtures on disk and audio comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"


def fixture(provider: str, name: str) -> str:
    """The wire text of one fixture message (without the trailing newline)."""
    matches = sorted((FIXTURES / provider).glob(f"*_{name}.json"))
    assert len(matches) == 1, (provider, name, matches)
    return matches[0].read_text().strip()


def handshake(provider: str) -> list[str | bytes]:
    out: list[str | bytes] = []
    for path in sorted((FIXTURES / provider).iterdir()):
        if path.is_dir():
            continue
        out.append(path.read_bytes() if path.suffix == ".bin" else path.read_text().strip())
    return out


def tone_8k() -> bytes:
    return (FIXTURES / "tone_440hz_20ms_8k.pcm").read_bytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int64)


def max_abs_diff(a: bytes, b: bytes) -> int:
    assert len(a) == len(b), (len(a), len(b))
    return int(np.max(np.abs(samples(a) - samples(b)))) if a else 0
