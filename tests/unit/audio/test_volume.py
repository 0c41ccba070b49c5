"""Volume: RMS dBFS mapped to [0, 1]; 0.6 (the default min_volume) is −50 dBFS."""

from __future__ import annotations

import math

import numpy as np
import pytest

from callpipe.audio.volume import calculate_volume, rms_dbfs


def _sine(amplitude: float, rate: int = 8000, secs: float = 0.032) -> bytes:
    t = np.arange(int(rate * secs)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def test_silence_and_empty_are_zero() -> None:
    assert calculate_volume(b"\x00\x00" * 256, 8000) == 0.0
    assert calculate_volume(b"", 8000) == 0.0
    assert rms_dbfs(b"") == -math.inf


def test_full_scale_sine_is_minus_3_dbfs_and_clamped_to_one() -> None:
    assert rms_dbfs(_sine(32767)) == pytest.approx(-3.01, abs=0.05)
    assert calculate_volume(_sine(32767), 8000) == 1.0


def test_scale_points() -> None:
    # A sine whose RMS is −50 dBFS sits exactly at the default min_volume.
    amplitude = 32768 * math.sqrt(2) * 10 ** (-50 / 20)
    assert calculate_volume(_sine(amplitude, secs=1.0), 8000) == pytest.approx(0.6, abs=0.005)
    assert calculate_volume(_sine(3000), 8000) > 0.85  # ordinary speech level
    assert calculate_volume(_sine(20), 8000) < 0.6  # line hiss


def test_monotonic_in_level() -> None:
    levels = [calculate_volume(_sine(a), 8000) for a in (10, 100, 1000, 10000)]
    assert levels == sorted(levels) and len(set(levels)) == 4


def test_odd_trailing_byte_ignored() -> None:
    assert calculate_volume(_sine(1000) + b"\x7f", 8000) == calculate_volume(_sine(1000), 8000)


def _arithmetic_dbfs(pcm: bytes) -> float:
    """The level computed the long way, for comparison with rms_dbfs's shortcuts."""
    count = len(pcm) // 2
    if count == 0:
        return -math.inf
    samples = np.frombuffer(pcm, dtype="<i2", count=count).astype(np.float32)
    mean_square = float(np.dot(samples, samples)) / count
    return -math.inf if mean_square <= 0.0 else 10.0 * math.log10(mean_square / 32768.0**2)


@pytest.mark.parametrize(
    "pcm",
    [
        bytes(512),  # digital silence, one 8 kHz VAD window
        bytes(511),  # odd length: the dangling byte is no sample
        bytes(510) + b"\x00\x07",  # one quiet sample at the end
        b"\x01" + bytes(511),  # one quiet sample at the start
        bytes(511) + b"\x05",  # silence plus a dangling nonzero byte: still silence
        bytes(4096),
        bytes(4098),  # longer than the shortcut's buffer: the long way, same answer
        bytes(4096) + b"\x00\x01",
        b"\xff" * 512,  # -1 everywhere: not silence
    ],
)
def test_digital_silence_shortcut_gives_the_arithmetic_level(pcm: bytes) -> None:
    assert rms_dbfs(pcm) == _arithmetic_dbfs(pcm)


def test_levels_match_the_arithmetic_on_random_windows() -> None:
    rng = np.random.default_rng(7)
    for scale in (0.0, 0.4, 1.0, 30.0, 3000.0):
        for _ in range(50):
            pcm = np.rint(rng.standard_normal(256) * scale).astype("<i2").tobytes()
            assert rms_dbfs(pcm) == _arithmetic_dbfs(pcm)
