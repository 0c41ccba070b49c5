"""Whisper log-mel features in numpy: the input the smart-turn v3 model was trained on.

Smart-turn v3 is a Whisper-encoder classifier over 8 s of 16 kHz audio. Its features follow the
Whisper definition: a centred STFT (reflect padding, periodic Hann window of 400 samples, hop
160), power spectrum, an 80-band Slaney mel filterbank (linear below 1 kHz, logarithmic above,
each triangle scaled to unit area), ``log10`` floored at 1e-10, the last frame dropped, values
clamped to at most 8 below the maximum, then mapped with ``(x + 4) / 4``.

The model was trained with the waveform normalised to zero mean and unit variance first (the
``do_normalize`` option of the usual Whisper feature extractor), over the whole 8 s window
including the zero padding in front of short clips; :func:`smart_turn_features` does that.
Written from that definition; tests compare :func:`log_mel` with faster-whisper's extractor.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
WINDOW_SECS = 8
WINDOW_SAMPLES = SAMPLE_RATE * WINDOW_SECS

FloatArray = npt.NDArray[np.float32]

# Slaney's mel scale: 3 mels per 200 Hz up to 1 kHz, then log-spaced (27 mels per factor 6.4).
_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_BREAK_HZ = 1000.0
_BREAK_MEL = _BREAK_HZ / _LINEAR_HZ_PER_MEL
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = hz / _LINEAR_HZ_PER_MEL
    logarithmic = _BREAK_MEL + np.log(np.maximum(hz, _BREAK_HZ) / _BREAK_HZ) / _LOG_STEP
    return np.where(hz < _BREAK_HZ, linear, logarithmic)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = mel * _LINEAR_HZ_PER_MEL
    logarithmic = _BREAK_HZ * np.exp(_LOG_STEP * (mel - _BREAK_MEL))
    return np.where(mel < _BREAK_MEL, linear, logarithmic)


def mel_filterbank(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float64]:
    """``[n_mels, n_fft // 2 + 1]`` triangles between 0 Hz and Nyquist, area-normalised."""
    bin_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges_mel = np.linspace(0.0, float(_hz_to_mel(np.array(sample_rate / 2.0))), n_mels + 2)
    edges = _mel_to_hz(edges_mel)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bin_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bin_hz[None, :]) / (upper - centre)
    triangles = np.clip(np.minimum(rising, falling), 0.0, None)
    return triangles * (2.0 / (upper - lower))


_FILTERS = mel_filterbank().astype(np.float32)
# The filterbank is sparse (each FFT bin feeds at most two bands: ~390 of 16,080 weights are
# non-zero), so it is applied as a sparse product. A dense matmul goes to BLAS, whose worker
# threads cost several times the whole feature computation on a busy machine.
_ROWS, _COLS = np.nonzero(_FILTERS)
_WEIGHTS = _FILTERS[_ROWS, _COLS]
_BANDS = np.unique(_ROWS)
_BAND_STARTS = np.searchsorted(_ROWS, _BANDS)
_WINDOW = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def log_mel(audio: FloatArray) -> FloatArray:
    """Whisper log-mel of 16 kHz float audio: ``[80, len(audio) // 160]`` (last frame dropped)."""
    half = N_FFT // 2
    padded = np.pad(audio.astype(np.float32, copy=False), half, mode="reflect")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    spectrum = np.fft.rfft(frames * _WINDOW, axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)[:-1]
    mel = np.zeros((N_MELS, len(power)), dtype=np.float32)
    mel[_BANDS] = np.add.reduceat(power[:, _COLS] * _WEIGHTS, _BAND_STARTS, axis=1).T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    features: FloatArray = ((log_spec + 4.0) / 4.0).astype(np.float32)
    return features


def fit_window(audio: FloatArray) -> FloatArray:
    """The last 8 s of ``audio``, zero-padded in front when shorter (the model's fixed input)."""
    if len(audio) >= WINDOW_SAMPLES:
        return audio[-WINDOW_SAMPLES:]
    out = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    out[WINDOW_SAMPLES - len(audio) :] = audio
    return out


def smart_turn_features(audio: FloatArray) -> FloatArray:
    """Model input ``[1, 80, 800]`` from 16 kHz float audio of any length (last 8 s used)."""
    window = fit_window(audio).astype(np.float32)
    window = (window - window.mean()) / np.sqrt(window.var() + 1e-7)
    features: FloatArray = log_mel(window)[None, :, :]
    return features
