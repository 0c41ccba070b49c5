"""In-band DTMF generator: the right Q.23 frequency pair per key, timing, and bad keys."""

from __future__ import annotations

import numpy as np
import pytest

from callpipe.audio.dtmf import DTMF_FREQUENCIES, dtmf_tones

ALL_FREQS = sorted({f for pair in DTMF_FREQUENCIES.values() for f in pair})


def _goertzel_power(x: np.ndarray, rate: int, freq: float) -> float:
    n = np.arange(len(x))
    return float(abs(np.sum(x * np.exp(-2j * np.pi * freq * n / rate))) ** 2)


def _detect(pcm: bytes, rate: int) -> tuple[float, float]:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    powers = {f: _goertzel_power(x, rate, f) for f in ALL_FREQS}
    low = max((f for f in powers if f < 1000), key=powers.__getitem__)
    high = max((f for f in powers if f > 1000), key=powers.__getitem__)
    return low, high


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("key", list("0123456789*#ABCD"))
def test_each_key_has_its_frequency_pair(key: str, rate: int) -> None:
    pcm = dtmf_tones(key, rate, tone_ms=80, gap_ms=0)
    assert len(pcm) == 2 * rate * 80 // 1000
    assert _detect(pcm, rate) == DTMF_FREQUENCIES[key]
    assert DTMF_FREQUENCIES["*"] == (941.0, 1209.0) and DTMF_FREQUENCIES["#"] == (941.0, 1477.0)


def test_sequence_timing_and_silent_gaps() -> None:
    rate = 8000
    pcm = dtmf_tones("1#", rate, tone_ms=100, gap_ms=60)
    x = np.frombuffer(pcm, dtype="<i2")
    tone, gap = rate // 10, rate * 60 // 1000
    assert len(x) == 2 * (tone + gap)
    assert not x[tone : tone + gap].any()  # silence between digits
    assert _detect(x[:tone].tobytes(), rate) == (697.0, 1209.0)
    assert _detect(x[tone + gap : 2 * tone + gap].tobytes(), rate) == (941.0, 1477.0)
    assert np.abs(x).max() < 32767 * 0.75  # headroom, no clipping
    assert abs(int(x[0])) < 500  # faded in, no click


def test_pauses_and_case() -> None:
    assert dtmf_tones("w", 8000) == bytes(8000)
    assert dtmf_tones("a", 8000) == dtmf_tones("A", 8000)


@pytest.mark.parametrize("bad", ["x", "1 2", "E"])
def test_bad_keys_raise(bad: str) -> None:
    with pytest.raises(ValueError, match="DTMF"):
        dtmf_tones(bad, 8000)
