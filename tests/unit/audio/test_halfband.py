"""The 2:1 half-band resampler: response, alias/image rejection, exact alignment, chunking."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from callpipe.audio.halfband import HalfbandStream, interpolation_taps, is_halfband_pair
from callpipe.audio.resample import StreamResampler


def _tone(freq: float, rate: int, secs: float = 1.0) -> npt.NDArray[np.float64]:
    return np.sin(2 * np.pi * freq * np.arange(int(rate * secs)) / rate)


def _run(stream: HalfbandStream, x: npt.NDArray[np.float64], chunk: int) -> npt.NDArray[np.float64]:
    parts = [stream.resample_chunk(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    return np.concatenate(parts)


def _level_db(y: npt.NDArray[np.float64], rate: int, freq: float, reference: float = 1.0) -> float:
    """Level of the component at ``freq`` (Hann-windowed DFT peak) relative to ``reference``."""
    seg = y[len(y) // 4 : -len(y) // 4]
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    bins = np.fft.rfftfreq(len(seg), 1 / rate)
    k = int(np.argmin(np.abs(bins - freq)))
    peak = spectrum[max(0, k - 3) : k + 4].max()
    return float(20 * np.log10(peak / (len(seg) / 4) / reference))


def test_pairs() -> None:
    assert is_halfband_pair(8000, 16000) and is_halfband_pair(48000, 24000)
    assert not is_halfband_pair(8000, 24000) and not is_halfband_pair(16000, 16000)


def test_taps_are_symmetric_and_sum_to_one() -> None:
    taps = interpolation_taps()
    assert taps.sum() == pytest.approx(1.0)
    assert np.allclose(taps, taps[::-1])


@pytest.mark.parametrize("freq", [300, 1000, 2000, 3000, 3400])
def test_upsampling_is_flat_in_band_and_rejects_images(freq: int) -> None:
    y = _run(HalfbandStream(up=True), _tone(freq, 8000), 160)
    assert _level_db(y, 16000, freq) == pytest.approx(0.0, abs=0.01)
    assert _level_db(y, 16000, 8000 - freq) < -88.0  # the image a zero-stuffer would leave


@pytest.mark.parametrize("freq", [4600, 5000, 6000, 7900])
def test_downsampling_rejects_aliases(freq: int) -> None:
    y = _run(HalfbandStream(up=False), _tone(freq, 16000), 320)[200:-200]
    rms = float(np.sqrt(np.mean(y**2)))
    assert 20 * np.log10(rms / np.sqrt(0.5)) < -88.0


@pytest.mark.parametrize("freq", [300, 3400])
def test_downsampling_keeps_the_phone_band(freq: int) -> None:
    y = _run(HalfbandStream(up=False), _tone(freq, 16000), 320)
    assert _level_db(y, 8000, freq) == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (16000, 8000)])
def test_stream_resampler_output_is_exactly_aligned(in_rate: int, out_rate: int) -> None:
    # The fixed delay is dropped at the start and pushed out at flush: an impulse at input
    # sample t comes out at output sample t × out/in, and nothing is lost or added.
    pcm = np.zeros(in_rate // 10, dtype="<i2")
    at = len(pcm) // 2
    pcm[at] = 16000
    resampler = StreamResampler(in_rate, out_rate)
    assert resampler.latency_secs == pytest.approx(0.0025)
    chunk = in_rate // 50 * 2
    raw = pcm.tobytes()
    out = b"".join(resampler.resample(raw[i : i + chunk]) for i in range(0, len(raw), chunk))
    y = np.frombuffer(out + resampler.flush(), dtype="<i2")
    assert len(y) == len(pcm) * out_rate // in_rate
    assert int(np.argmax(y)) == at * out_rate // in_rate


@pytest.mark.parametrize("up", [True, False])
def test_any_chunking_gives_identical_samples(up: bool) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal(4001) * 5000  # odd total length: a leftover when downsampling
    whole = HalfbandStream(up=up).resample_chunk(x)
    for chunk in (1, 7, 160, 161, 320, 999):
        got = _run(HalfbandStream(up=up), x, chunk)
        assert np.array_equal(got, whole), chunk
    assert len(whole) == (len(x) * 2 if up else len(x) // 2)


def test_empty_chunks_are_harmless() -> None:
    for up in (True, False):
        stream = HalfbandStream(up=up)
        assert len(stream.resample_chunk(np.zeros(0))) == 0
        assert len(stream.resample_chunk(np.zeros(1))) == (2 if up else 0)
        assert len(stream.resample_chunk(np.zeros(1), last=True)) == (2 if up else 1)
