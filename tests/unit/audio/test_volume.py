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
