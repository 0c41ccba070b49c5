"""Streaming resampler: steady output, no tail loss, chunk-size independent, resets after gaps."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from callpipe.audio.resample import StreamResampler, resample_once
from callpipe.errors import ConfigurationError

RATES = [8000, 16000, 24000, 44100, 48000]
PAIRS = [(a, b) for a in RATES for b in RATES if a != b]


def _voice_like(
    rate: int, secs: float, seed: int = 0, top_hz: float = 3400
) -> npt.NDArray[np.int16]:
    """A sum of tones inside the telephone band (300 Hz–``top_hz``), inside every passband."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * secs)) / rate
    freqs = rng.uniform(300, top_hz, size=12)
    phases = rng.uniform(0, 2 * np.pi, size=12)
    signal = np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None]).sum(axis=0)
    return np.rint(signal / np.abs(signal).max() * 12000).astype(np.int16)


def _aligned_correlation(x: npt.NDArray[np.int16], y: npt.NDArray[np.int16]) -> tuple[float, float]:
    """Best correlation of ``y`` with ``x`` shifted by a fraction of a sample, and that shift.

    soxr's variable-rate engine leaves a sub-sample delay (< 0.5 sample after the lead-in
    compensation); a shift that small is inaudible but would dominate a plain correlation.
    """
    spectrum = np.fft.rfft(x.astype(np.float64))
    freqs = np.fft.rfftfreq(len(x))
    edge = len(x) // 20  # ignore the start-up and flush edges
    best = (-1.0, 0.0)
    for shift in np.linspace(-1.0, 1.0, 81):
        shifted = np.fft.irfft(spectrum * np.exp(-2j * np.pi * freqs * shift), len(x))
        corr = float(np.corrcoef(shifted[edge:-edge], y[edge:-edge].astype(np.float64))[0, 1])
        best = max(best, (corr, float(shift)))
    return best


def _stream(resampler: StreamResampler, pcm: bytes, chunk_bytes: int) -> list[bytes]:
    return [resampler.resample(pcm[i : i + chunk_bytes]) for i in range(0, len(pcm), chunk_bytes)]


def _pcm(data: bytes) -> npt.NDArray[np.int16]:
    return np.frombuffer(data, dtype="<i2")


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_steady_output_and_no_lost_samples(in_rate: int, out_rate: int) -> None:
    pcm = _voice_like(in_rate, 0.5).tobytes()
    chunk = in_rate // 50 * 2  # 20 ms
    resampler = StreamResampler(in_rate, out_rate)
    outputs = _stream(resampler, pcm, chunk)
    nominal = chunk // 2 * out_rate / in_rate
    # Never more than one input chunk's worth per call (no bursts) ...
    assert max(len(o) // 2 for o in outputs) <= int(nominal) + 1
    # ... and what is held back is exactly the documented latency, released by flush().
    held = round(len(pcm) // 2 * out_rate / in_rate) - sum(len(o) // 2 for o in outputs)
    assert abs(held - resampler.latency_samples) <= 1
    tail = resampler.flush()
    total = sum(len(o) for o in outputs) + len(tail)
    assert abs(total // 2 - len(pcm) // 2 * out_rate / in_rate) <= 1
    assert resampler.latency_secs <= 0.031


def _round_trip(original: npt.NDArray[np.int16], mid_rate: int) -> npt.NDArray[np.int16]:
    up, down = StreamResampler(8000, mid_rate), StreamResampler(mid_rate, 8000)
    mid = b"".join(_stream(up, original.tobytes(), 320)) + up.flush()
    return _pcm(b"".join(_stream(down, mid, mid_rate // 50 * 2)) + down.flush())


@pytest.mark.parametrize("mid_rate", [16000, 24000, 48000])
def test_round_trip_8k_correlates_with_input(mid_rate: int) -> None:
    # Where speech carries its energy (< 1.5 kHz) the round trip is transparent.
    original = _voice_like(8000, 1.0, seed=3, top_hz=1500)
    back = _round_trip(original, mid_rate)
    assert len(back) == len(original)
    corr, shift = _aligned_correlation(original, back)
    assert corr > 0.999
    assert abs(shift) <= 1.0  # ≤ 125 µs at 8 kHz


@pytest.mark.parametrize("freq", [300, 1000, 2000, 3000, 3400])
def test_round_trip_keeps_level_across_the_phone_band(freq: int) -> None:
    # Downsampling with soxr's variable-rate engine is not exactly linear-phase (its group delay
    # rises by ~1 sample toward 3.4 kHz, ~150 µs: inaudible), so the level is checked per tone.
    t = np.arange(8000) / 8000
    tone = np.rint(10000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    back = _round_trip(tone, 16000)[800:-800].astype(np.float64)
    rms = np.sqrt(np.mean(back**2))
    assert 20 * np.log10(rms / (10000 / np.sqrt(2))) == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (24000, 8000), (8000, 44100)])
def test_chunk_size_independent(in_rate: int, out_rate: int) -> None:
    pcm = _voice_like(in_rate, 0.4, seed=1).tobytes()
    results = []
    for ms in (10, 20, 40):
        resampler = StreamResampler(in_rate, out_rate)
        results.append(
            b"".join(_stream(resampler, pcm, in_rate * ms // 1000 * 2)) + resampler.flush()
        )
    assert results[0] == results[1] == results[2]


def test_gap_clears_state_so_next_utterance_starts_clean() -> None:
    first, second = _voice_like(8000, 0.2, 5).tobytes(), _voice_like(8000, 0.2, 6).tobytes()
    resampler = StreamResampler(8000, 16000, clear_after_secs=0.2)
    for i in range(0, len(first), 320):
        resampler.resample(first[i : i + 320], now=i / 16000)
    after_gap = [
        resampler.resample(second[i : i + 320], now=5.0 + i / 16000)
        for i in range(0, len(second), 320)
    ]
    fresh = StreamResampler(8000, 16000)
    assert after_gap == _stream(fresh, second, 320)


def test_no_reset_without_gap_or_when_disabled() -> None:
    pcm = _voice_like(8000, 0.2).tobytes()
    for clear_after in (0.2, None):
        timed = StreamResampler(8000, 16000, clear_after_secs=clear_after)
        untimed = StreamResampler(8000, 16000)
        gap = 0.0 if clear_after else 100.0
        a = [timed.resample(pcm[i : i + 320], now=i * gap) for i in range(0, len(pcm), 320)]
        assert a == _stream(untimed, pcm, 320)


def test_flush_then_reuse_and_reset() -> None:
    pcm = _voice_like(16000, 0.1).tobytes()
    resampler = StreamResampler(16000, 8000)
    first = b"".join(_stream(resampler, pcm, 640)) + resampler.flush()
    second = b"".join(_stream(resampler, pcm, 640)) + resampler.flush()
    assert first == second and len(first) == len(pcm) // 2
    resampler.resample(pcm)
    resampler.reset()
    assert resampler.flush() == b""


def test_odd_bytes_are_carried_not_lost() -> None:
    pcm = _voice_like(8000, 0.1).tobytes()
    whole = StreamResampler(8000, 16000)
    expected = whole.resample(pcm) + whole.flush()
    split = StreamResampler(8000, 16000)
    got = b"".join(split.resample(pcm[i : i + 33]) for i in range(0, len(pcm), 33)) + split.flush()
    assert got == expected


def test_passthrough_same_rate() -> None:
    resampler = StreamResampler(8000, 8000)
    assert resampler.resample(b"\x01\x02\x03") == b"\x01\x02\x03"
    assert resampler.flush() == b"" and resampler.latency_samples == 0


def test_downsampling_rejects_aliases() -> None:
    rate = 24000
    t = np.arange(rate) / rate
    tone = np.rint(10000 * np.sin(2 * np.pi * 6000 * t)).astype("<i2").tobytes()  # above 4 kHz
    resampler = StreamResampler(rate, 8000)
    out = _pcm(b"".join(_stream(resampler, tone, 960)) + resampler.flush())[800:-800]
    # The tone's own start/stop clicks are in band, so look away from the edges.
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) < 10000 * 1e-3  # < −60 dB


def test_resample_once() -> None:
    pcm = _voice_like(16000, 0.25).tobytes()
    out = resample_once(pcm, 16000, 8000)
    assert len(out) == len(pcm) // 2
    assert resample_once(pcm, 16000, 16000) == pcm
    assert resample_once(b"\x01", 16000, 8000) == b""


def test_bad_rates_rejected() -> None:
    with pytest.raises(ConfigurationError):
        StreamResampler(0, 8000)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (16000, 8000)])
def test_full_scale_square_wave_saturates_instead_of_wrapping(in_rate: int, out_rate: int) -> None:
    # A full-scale square wave overshoots after filtering (Gibbs); the overshoot must clamp at
    # the int16 limits, never wrap around to the opposite sign.
    square = np.where(np.arange(in_rate) % 40 < 20, 32767, -32768).astype("<i2")
    stream = StreamResampler(in_rate, out_rate)
    step = in_rate // 50 * 2
    raw = square.tobytes()
    out = b"".join(stream.resample(raw[i : i + step]) for i in range(0, len(raw), step))
    samples = np.frombuffer(out, dtype="<i2").astype(np.int32)
    assert samples.max() == 32767 and samples.min() == -32768
    # Wrapping would put near-full-scale values of opposite sign next to each other; the
    # filtered edges pass through intermediate values.
    big = np.abs(samples) > 30000
    flips = big[1:] & big[:-1] & (np.sign(samples[1:]) != np.sign(samples[:-1]))
    assert not flips.any()
