"""Offline speech synthesis with eSpeak NG, through ctypes on the library that the
``espeakng-loader`` wheel ships (with its voice data), so no system package is needed.

eSpeak NG keeps global state (one voice, one callback), so calls are serialised by a lock. It
synthesises a sentence in a few milliseconds; callers on an event loop still run it in a
thread (``asyncio.to_thread``) so a long text never blocks other calls.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

from callpipe.audio.resample import resample_once
from callpipe.errors import ConfigurationError, MissingDependencyError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Engine:
    """The loaded library, its native rate, and the chunks of the synthesis in progress."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise MissingDependencyError("eSpeak NG (offline text-to-speech)", "espeak") from exc
        self.lib: Any = ctypes.CDLL(espeakng_loader.get_library_path())
        data_dir = str(Path(espeakng_loader.get_data_path()).parent)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.rate: int = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_dir.encode(), 0
        )
        if self.rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data at {data_dir})")
        self.chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: C holds a pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.voice = ""
        self.wpm = 0

    def _collect(self, wav: Any, num_samples: int, events: Any) -> int:
        if num_samples > 0 and wav:
            self.chunks.append(ctypes.string_at(wav, num_samples * 2))
        return 0

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> bytes:
        if voice != self.voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ConfigurationError(f"eSpeak NG has no voice {voice!r}")
            self.voice = voice
            self.wpm = -1  # a voice brings its own speed: set the rate again below
        if rate_wpm != self.wpm:
            self.lib.espeak_SetParameter(_ESPEAK_RATE, int(rate_wpm), 0)
            self.wpm = rate_wpm
        data = text.encode("utf-8")
        self.chunks = []
        # The library has one global callback: set ours again in case another binding of the
        # same library in this process replaced it (a dangling callback would crash).
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_Synth(
            ctypes.c_char_p(data),
            ctypes.c_size_t(len(data) + 1),
            0,
            _POS_CHARACTER,
            0,
            _ESPEAK_CHARS_UTF8,
            None,
            None,
        )
        self.lib.espeak_Synchronize()
        pcm = b"".join(self.chunks)
        self.chunks = []
        return pcm


_lock = threading.Lock()
_engine: _Engine | None = None


def native_sample_rate() -> int:
    """The rate eSpeak NG synthesises at (22050 Hz for the bundled voices)."""
    with _lock:
        return _get_engine().rate


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def synthesize(text: str, sample_rate: int, voice: str = "en-us", rate_wpm: int = 175) -> bytes:
    """``text`` spoken by eSpeak NG as PCM16 mono at ``sample_rate`` (blocking; thread-safe)."""
    if not text.strip():
        return b""
    with _lock:
        engine = _get_engine()
        pcm = engine.synthesize(text, voice, rate_wpm)
        native = engine.rate
    return pcm if native == sample_rate else resample_once(pcm, native, sample_rate)
