"""RNNoiseFilter: RNNoise noise suppression (the ``pyrnnoise`` package's library, via ctypes).

RNNoise works on 10 ms frames of 48 kHz audio (480 samples). Telephony audio (8 or 16 kHz) is
resampled up, denoised in whole frames and resampled back, with callpipe's stream resamplers.
The filter holds back less than one RNNoise frame plus the resamplers' delay (about 15 ms at
8 kHz). ``FilterEnableFrame(False)`` passes audio through unchanged.

Install with ``pip install 'callpipe[rnnoise]'``. Only the native library shipped in the
package is loaded (the package's own Python wrapper pulls in a media stack we do not need).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from callpipe.audio.filters.base_audio_filter import BaseAudioFilter
from callpipe.audio.resample import StreamResampler
from callpipe.errors import MissingDependencyError
from callpipe.frames.frames import FilterControlFrame, FilterEnableFrame

logger = logging.getLogger(__name__)

RNNOISE_RATE = 48000
_LIB: Any = None


def _library() -> Any:
    """Load ``librnnoise`` from the installed ``pyrnnoise`` package (once per process)."""
    global _LIB
    if _LIB is not None:
        return _LIB
    spec = importlib.util.find_spec("pyrnnoise")
    folders = list(spec.submodule_search_locations or []) if spec else []
    paths = [
        p
        for folder in folders
        for p in Path(folder).glob("*rnnoise*.*")
        if p.suffix in (".so", ".dylib", ".dll")
    ]
    if not paths:
        raise MissingDependencyError("pyrnnoise", "rnnoise")
    lib = ctypes.CDLL(str(paths[0]))
    lib.rnnoise_create.argtypes = [ctypes.c_void_p]
    lib.rnnoise_create.restype = ctypes.c_void_p
    lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    lib.rnnoise_get_frame_size.restype = ctypes.c_int
    lib.rnnoise_process_frame.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_float),
        ctypes.POINTER(ctypes.c_float),
    ]
    lib.rnnoise_process_frame.restype = ctypes.c_float
    _LIB = lib
    return lib


class RNNoiseFilter(BaseAudioFilter):
    """Suppresses stationary and non-stationary noise (fans, traffic, keyboard) in caller audio.

    Construct it anywhere; the native library is loaded at ``start`` (so a missing extra is
    reported when the call starts, with the install line). ``speech_probability`` is RNNoise's
    voice probability for the last frame, for callers that want it.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._enabled = True
        self._state: Any = None
        self._lib: Any = None
        self._frame = 480
        self._up: StreamResampler | None = None
        self._down: StreamResampler | None = None
        self._pending = np.zeros(0, dtype=np.float32)
        self._buf = np.zeros(0, dtype=np.float32)
        self.speech_probability = 0.0

    async def start(self, sample_rate: int) -> None:
        self._lib = _library()
        self._frame = int(self._lib.rnnoise_get_frame_size())
        self._state = self._lib.rnnoise_create(None)
        self._buf = np.zeros(self._frame, dtype=np.float32)
        if sample_rate != RNNOISE_RATE:
            self._up = StreamResampler(sample_rate, RNNOISE_RATE, clear_after_secs=None)
            self._down = StreamResampler(RNNOISE_RATE, sample_rate, clear_after_secs=None)

    async def stop(self) -> None:
        if self._state is not None and self._lib is not None:
            self._lib.rnnoise_destroy(self._state)
        self._state = None

    async def process_frame(self, frame: FilterControlFrame) -> None:
        if isinstance(frame, FilterEnableFrame):
            self._enabled = frame.enable

    async def filter(self, audio: bytes) -> bytes:
        if not self._enabled or self._state is None:
            return audio
        wide = self._up.resample(audio) if self._up is not None else audio[: len(audio) & ~1]
        samples = np.frombuffer(wide, dtype="<i2").astype(np.float32)
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        whole = len(samples) - len(samples) % self._frame
        self._pending = samples[whole:].copy()
        out = np.empty(whole, dtype=np.float32)
        buf = self._buf
        ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        for start in range(0, whole, self._frame):
            buf[:] = samples[start : start + self._frame]
            self.speech_probability = float(self._lib.rnnoise_process_frame(self._state, ptr, ptr))
            out[start : start + self._frame] = buf
        denoised = np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()
        return self._down.resample(denoised) if self._down is not None else denoised
