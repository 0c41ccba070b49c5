"""Streaming sample-rate conversion for one direction of one call, built on soxr.

Why not soxr's ordinary streaming mode: it processes in large DFT blocks, so 20 ms in does not
mean 20 ms out — at 8→16 kHz it returns nothing for ~100 ms, then ~95 ms bursts, which makes
VAD/STT late and output pacing choppy (what Pipecat users hear). soxr's variable-rate
engine (``vr=True``) with a fixed ratio is a polyphase interpolator instead: it releases exactly
the nominal amount for every chunk after a fixed, small hold-back, with > 110 dB alias rejection.
Both quality and steadiness are checked in ``tests/unit/audio/test_resample.py``.

Samples go through soxr as float32 (values kept on the int16 scale): soxr's int16 path adds
dither, which would make the output depend on how the input was chunked.

Exact 2:1 pairs (8 ↔ 16 kHz, 24 ↔ 48 kHz) do not use soxr: ``halfband.py`` converts them with a
linear-phase half-band filter, steady as well, ~40 % cheaper and with a 2.5 ms hold-back at 8/16
kHz instead of 30/15 ms (passband to 0.425 × the lower rate, ≥ 90 dB image/alias rejection).

Added latency (the audio held back inside the stream, measured by ``latency_samples``; it does not
depend on the chunk size) with soxr 1.1 and the half-band pairs:

==========  ========  ========  ========  ========  ========
in \\ out   8 kHz     16 kHz    24 kHz    44.1 kHz  48 kHz
==========  ========  ========  ========  ========  ========
8 kHz       —         2.5 ms    30 ms     30 ms     30 ms
16 kHz      2.5 ms    —         15 ms     15 ms     15 ms
24 kHz      25.2 ms   10.1 ms   —         10 ms     0.8 ms
44.1 kHz    30.2 ms   13.8 ms   5.5 ms    —         5.4 ms
48 kHz      27.8 ms   12.6 ms   0.8 ms    5.1 ms    —
==========  ========  ========  ========  ========  ========

Pipecat's VHQ stream, for comparison, returns nothing for ~100 ms and then 95–137 ms bursts.
The price is CPU: the variable-rate engine costs ~0.6–1.7 ms per second of audio per stream
(2–5× soxr's block mode). When downsampling it is also not exactly linear-phase (group delay
rises by ~1 output sample toward 3.4 kHz at 8 kHz, ~150 µs, inaudible); levels are flat.
``benchmarks/audio_bench.py`` measures hold-back, bursts and CPU against Pipecat.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from callpipe.audio.halfband import HalfbandStream, is_halfband_pair
from callpipe.errors import ConfigurationError

__all__ = ["StreamResampler", "resample_once"]

_EMPTY_F32: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)


def _to_float(pcm: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32)


def _to_pcm(samples: npt.NDArray[np.floating[Any]]) -> bytes:
    if samples.size == 0:
        return b""
    out: npt.NDArray[np.floating[Any]] = np.rint(samples)
    # minimum/maximum in place: np.clip's dispatch costs ~1 µs more on a 20 ms chunk.
    np.minimum(out, 32767.0, out=out)
    np.maximum(out, -32768.0, out=out)
    return bytes(out.astype("<i2").tobytes())


class _Stream(Protocol):
    """soxr's stream (float32 in) or the half-band stream (int16 or float32 in)."""

    def resample_chunk(
        self, samples: npt.NDArray[Any], last: bool = False
    ) -> npt.NDArray[np.floating[Any]]: ...


def _new_stream(in_rate: int, out_rate: int) -> _Stream:
    if is_halfband_pair(in_rate, out_rate):
        return HalfbandStream(up=out_rate > in_rate)
    stream: _Stream = soxr.ResampleStream(
        in_rate, out_rate, 1, dtype="float32", quality="HQ", vr=True
    )
    return stream


@functools.lru_cache(maxsize=64)
def _measure(in_rate: int, out_rate: int) -> tuple[int, int]:
    """Probe a stream once per rate pair: ``(lead_in, latency)`` in output samples.

    ``lead_in``: soxr's variable-rate engine delays its output by a couple of samples when
    downsampling (≈2 at 8 kHz); that many leading samples are dropped, and the same number are
    pulled out at flush, so output stays aligned with input and the utterance's end is kept.
    ``latency``: output samples held back in steady state (fixed for the pair).
    """
    gcd = math.gcd(in_rate, out_rate)
    impulse_at = (in_rate // gcd) * max(1, (in_rate // 5) // (in_rate // gcd))
    probe = np.zeros(impulse_at * 2, dtype=np.float32)
    probe[impulse_at] = 1.0
    stream = _new_stream(in_rate, out_rate)
    out = stream.resample_chunk(probe)
    ideal = impulse_at * out_rate // in_rate
    lead_in = max(0, int(np.argmax(out)) - ideal) if out.size > ideal else 0

    stream = _new_stream(in_rate, out_rate)
    chunk = np.zeros(max(1, in_rate // 50), dtype=np.float32)
    produced = sum(len(stream.resample_chunk(chunk)) for _ in range(20))  # 400 ms, past start-up
    latency = round(20 * len(chunk) * out_rate / in_rate) - (produced - lead_in)
    return lead_in, latency


def _check_rates(in_rate: int, out_rate: int) -> None:
    if in_rate <= 0 or out_rate <= 0:
        raise ConfigurationError(f"sample rates must be positive, got {in_rate} → {out_rate}")


class StreamResampler:
    """A stateful resampler for one audio stream (e.g. the caller's audio, 8 → 16 kHz).

    Feed chunks in order with :meth:`resample`; each call returns about ``len × out/in`` samples
    (never a burst), delayed by :attr:`latency_samples`. Call :meth:`flush` when an utterance
    ends (e.g. at the end of a TTS segment) so its last ~30 ms are not lost. If ``now`` is passed
    to :meth:`resample` and more than ``clear_after_secs`` passed since the previous call, the
    stream is reset first so a new utterance does not start with the previous one's leftovers.
    Same input and output rate: chunks pass through untouched.
    """

    def __init__(
        self, in_rate: int, out_rate: int, *, clear_after_secs: float | None = 0.2
    ) -> None:
        _check_rates(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.clear_after_secs = clear_after_secs
        self._passthrough = in_rate == out_rate
        self._halfband = is_halfband_pair(in_rate, out_rate)
        self._stream: _Stream | None = None
        self._odd_byte = b""
        self._last_time: float | None = None
        self._lead_in = 0 if self._passthrough else _measure(in_rate, out_rate)[0]
        self._to_skip = 0  # leading output samples still to drop (see ``_measure``)
        self._samples_in = 0  # counted from the current stream's start
        self._samples_out = 0

    @property
    def latency_samples(self) -> int:
        """Output samples held back by the stream in steady state (0 for passthrough)."""
        return 0 if self._passthrough else _measure(self.in_rate, self.out_rate)[1]

    @property
    def latency_secs(self) -> float:
        """:attr:`latency_samples` in seconds."""
        return self.latency_samples / self.out_rate

    def resample(self, pcm: bytes, *, now: float | None = None) -> bytes:
        """Convert the next chunk of 16-bit PCM; returns the PCM that is ready."""
        if now is not None:
            last, self._last_time = self._last_time, now
            gap = self.clear_after_secs
            if last is not None and gap is not None and now - last > gap:
                self.reset()
        if self._passthrough:
            return pcm
        if self._odd_byte:
            pcm = self._odd_byte + pcm
            self._odd_byte = b""
        if len(pcm) % 2:
            pcm, self._odd_byte = pcm[:-1], pcm[-1:]
        if not pcm:
            return b""
        if self._stream is None:
            self._stream = _new_stream(self.in_rate, self.out_rate)
            self._to_skip = self._lead_in
            self._samples_in = self._samples_out = 0
        # The half-band stream converts int16 straight into its float64 buffer; soxr wants float32.
        samples = np.frombuffer(pcm, "<i2") if self._halfband else _to_float(pcm)
        self._samples_in += len(samples)
        return self._emit(self._stream.resample_chunk(samples))

    def _emit(self, out: npt.NDArray[np.floating[Any]]) -> bytes:
        if self._to_skip:
            skipped = min(self._to_skip, len(out))
            out = out[skipped:]
            self._to_skip -= skipped
        self._samples_out += len(out)
        return _to_pcm(out)

    def flush(self) -> bytes:
        """Emit the audio still held in the stream and start afresh (call at utterance end)."""
        self._odd_byte = b""
        stream, self._stream = self._stream, None
        if stream is None:
            return b""
        # Push zeros through so the lead-in we dropped at the start comes out at the end,
        # then cut the output to exactly in × out/in samples in total.
        padding = np.zeros(math.ceil(self._lead_in * self.in_rate / self.out_rate) + 1, np.float32)
        tail = np.concatenate(
            [stream.resample_chunk(padding), stream.resample_chunk(_EMPTY_F32, last=True)]
        )
        expected = round(self._samples_in * self.out_rate / self.in_rate)
        self._to_skip = 0
        return _to_pcm(tail[: max(0, expected - self._samples_out)])

    def reset(self) -> None:
        """Discard held audio and filter history."""
        self._stream = None
        self._odd_byte = b""
        self._to_skip = 0


def resample_once(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """Resample a complete clip (e.g. a cached prompt or a DTMF tone) with no start/end delay."""
    _check_rates(in_rate, out_rate)
    if in_rate == out_rate or len(pcm) < 2:
        return pcm if in_rate == out_rate else b""
    samples = _to_float(pcm[: len(pcm) & ~1])
    out = soxr.resample(samples, in_rate, out_rate, quality="VHQ")
    expected = math.floor(len(samples) * out_rate / in_rate + 0.5)
    return _to_pcm(np.asarray(out, dtype=np.float32)[:expected])
