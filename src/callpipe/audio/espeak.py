"""Offline speech synthesis with eSpeak NG, through ctypes on the library that the
``espeakng-loader`` wheel ships (with its voice data), so no system package is needed.

eSpeak NG keeps global state (one voice, one callback), so calls are serialised by a lock. It
synthesises a sentence in a few milliseconds; callers on an event loop still run it in a
thread (``asyncio.to_thread``) so a long text never blocks other calls.

**Same input, same samples.** eSpeak NG's voices "flutter" (a small pitch wobble) from a
counter that keeps running from one utterance to the next, so by default the same sentence
comes out a little different each time, depending on everything the process said before. The
simulated callers and the tests need reproducible speech, so a voice given without a variant
gets the ``callpipe-steady`` variant (``flutter 0``, nothing else changed). eSpeak NG only reads
variants from its data directory, and the wheel's may be read-only, so the engine starts on a
copy of that directory made of symlinks (about 150 of them, made once in the user's cache
directory). A voice given with its own variant (``"en-us+f3"``) keeps that variant's flutter.

Some synthesis state still carries over that no API resets (seen with eSpeak NG 1.52; neither
``espeak_ng_SetRandSeed`` nor a fresh ``espeak_Initialize`` changes it, and its exact source in
the library was not found): some texts ("Yes, that is correct.", "zoo", "Hello world") come out
in one of two renderings, alternately, while others ("the", "very") always come out the same,
and the text after a toggling one can take the state on. The speech is right either way; a test
that needs one exact rendering synthesises it in a new process.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from callpipe.audio.resample import resample_once
from callpipe.errors import ConfigurationError, MissingDependencyError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1

STEADY_VARIANT = "callpipe-steady"
"""The variant added to a voice named without one: eSpeak's default voice with no flutter."""

_VOICE_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}(\+[A-Za-z0-9_-]{1,32})?")
"""A language voice and an optional variant. eSpeak NG copies the name into fixed buffers, and a
long name or one with a path in it crashes the process (checked with eSpeak NG 1.52)."""

logger = logging.getLogger(__name__)

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
        real_data = Path(espeakng_loader.get_data_path())
        self.steady = True
        try:
            data_dir = _data_with_steady_variant(real_data)
        except OSError as exc:
            logger.warning("eSpeak NG speech will vary between calls: %s", exc)
            data_dir, self.steady = str(real_data.parent), False
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
        asked = voice
        if self.steady and "+" not in voice:
            voice = f"{voice}+{STEADY_VARIANT}"
        if voice != self.voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ConfigurationError(f"eSpeak NG has no voice {asked!r}")
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


_STEADY_TEXT = f"language variant\nname {STEADY_VARIANT}\nflutter 0\n"


def _data_with_steady_variant(real: Path) -> str:
    """An ``espeak-ng-data`` made of symlinks to ``real`` plus the steady variant; returns the
    directory to give ``espeak_Initialize`` (the one that holds ``espeak-ng-data``).

    Kept in the user's cache directory and shared by every process of this installation (the
    name hashes the real directory and its listing), so bots killed without cleanup leave nothing
    behind; where that directory cannot be written, a temporary one removed at exit.
    """
    listing = [str(real), _STEADY_TEXT]
    for folder in (real, real / "voices", real / "voices" / "!v"):
        listing.extend(sorted(entry.name for entry in folder.iterdir()))
    digest = hashlib.sha256("\n".join(listing).encode()).hexdigest()[:16]
    cache = _cache_dir()
    if cache is not None:
        try:
            return _shared_copy(real, cache, cache / f"espeak-ng-{digest}")
        except OSError:
            pass  # an unwritable cache: a private copy instead
    private = Path(tempfile.mkdtemp(prefix="callpipe-espeak-"))
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    _link_tree(real, private / "espeak-ng-data")
    return str(private)


def _shared_copy(real: Path, cache: Path, target: Path) -> str:
    """``target`` in the cache, built beside it and renamed into place unless it exists."""
    if (target / "espeak-ng-data" / "voices" / "!v" / STEADY_VARIANT).is_file():
        return str(target)
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=cache))
    try:
        _link_tree(real, building / "espeak-ng-data")
        building.rename(target)  # atomic; another process may have won the race
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
        if not target.is_dir():
            raise
    return str(target)


def _cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/callpipe`` or ``~/.cache/callpipe``; None when there is no home (a
    container user with no passwd entry and no ``HOME``)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "callpipe"
    try:
        return Path.home() / ".cache" / "callpipe"
    except (RuntimeError, KeyError):
        return None


def _link_tree(real: Path, data: Path) -> None:
    data.mkdir()
    for entry in real.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    voices = data / "voices"
    voices.mkdir()
    for entry in (real / "voices").iterdir():
        if entry.name != "!v":
            (voices / entry.name).symlink_to(entry)
    variants = voices / "!v"
    variants.mkdir()
    for entry in (real / "voices" / "!v").iterdir():
        (variants / entry.name).symlink_to(entry)
    (variants / STEADY_VARIANT).write_text(_STEADY_TEXT)


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
    """``text`` spoken by eSpeak NG as PCM16 mono at ``sample_rate`` (blocking; thread-safe).

    ``voice`` is an eSpeak NG voice, optionally with a variant (``"en-us"``, ``"en-gb+f3"``);
    anything else raises :class:`ConfigurationError` before it reaches the library.
    """
    if not _VOICE_NAME.fullmatch(voice):
        raise ConfigurationError(f"not an eSpeak NG voice name: {voice[:40]!r}")
    if not text.strip():
        return b""
    with _lock:
        engine = _get_engine()
        pcm = engine.synthesize(text, voice, rate_wpm)
        native = engine.rate
    return pcm if native == sample_rate else resample_once(pcm, native, sample_rate)
