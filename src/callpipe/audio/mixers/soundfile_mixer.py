"""SoundfileMixer: background or hold audio from sound files, mixed under the bot.

Files are read with ``soundfile`` (WAV, FLAC, OGG, ...; ``pip install 'callpipe[soundfile]'``),
mixed down to mono and converted to the transport's rate once at start, so any recording works
(not only files already at 8 kHz). Settings at runtime via ``MixerUpdateSettingsFrame``:
``sound`` (a name from ``sound_files``), ``volume`` (0..1) and ``loop``; ``MixerEnableFrame``
turns the sound on and off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from callpipe.audio.mixers.base_audio_mixer import BaseAudioMixer
from callpipe.audio.resample import resample_once
from callpipe.errors import MissingDependencyError
from callpipe.frames.frames import MixerControlFrame, MixerEnableFrame, MixerUpdateSettingsFrame

logger = logging.getLogger(__name__)


def _read(path: str, sample_rate: int) -> np.ndarray[Any, np.dtype[np.int16]]:
    try:
        import soundfile
    except ImportError as exc:
        raise MissingDependencyError("soundfile", "soundfile") from exc
    data, rate = soundfile.read(path, dtype="int16", always_2d=True)
    mono = data.mean(axis=1).astype("<i2") if data.shape[1] > 1 else data[:, 0].astype("<i2")
    pcm = mono.tobytes()
    if rate != sample_rate:
        pcm = resample_once(pcm, int(rate), sample_rate)
    return np.frombuffer(pcm, dtype="<i2")


class SoundfileMixer(BaseAudioMixer):
    """Plays ``sound_files[default_sound]`` under the bot at ``volume`` (looping by default)."""

    def __init__(
        self,
        *,
        sound_files: Mapping[str, str],
        default_sound: str,
        volume: float = 0.4,
        mixing: bool = True,
        loop: bool = True,
        **kwargs: Any,
    ) -> None:
        self._files = dict(sound_files)
        self._current = default_sound
        self._volume = volume
        self._mixing = mixing
        self._loop = loop
        self._sounds: dict[str, np.ndarray[Any, np.dtype[np.int16]]] = {}
        self._pos = 0

    async def start(self, sample_rate: int) -> None:
        for name, path in self._files.items():
            try:
                self._sounds[name] = _read(path, sample_rate)
            except MissingDependencyError:
                raise
            except Exception as exc:  # a bad file mutes that sound; the call goes on
                logger.error("mixer sound %r (%s) unreadable: %s", name, path, exc)

    async def stop(self) -> None:
        self._pos = 0

    async def process_frame(self, frame: MixerControlFrame) -> None:
        if isinstance(frame, MixerEnableFrame):
            self._mixing = frame.enable
        elif isinstance(frame, MixerUpdateSettingsFrame):
            for key, value in frame.settings.items():
                if key == "sound":
                    if value in self._files:
                        self._current, self._pos = str(value), 0
                    else:
                        logger.warning("mixer: no sound named %r", value)
                elif key == "volume":
                    self._volume = float(value)
                elif key == "loop":
                    self._loop = bool(value)

    async def mix(self, audio: bytes) -> bytes:
        sound = self._sounds.get(self._current)
        if not self._mixing or sound is None or not len(sound):
            return audio
        bot = np.frombuffer(audio, dtype="<i2", count=len(audio) // 2)
        n = len(bot)
        part = self._take(sound, n)
        if part is None:
            return audio
        mixed = bot.astype(np.int32) + (part.astype(np.float32) * self._volume).astype(np.int32)
        return np.clip(mixed, -32768, 32767).astype("<i2").tobytes()

    def _take(
        self, sound: np.ndarray[Any, np.dtype[np.int16]], n: int
    ) -> np.ndarray[Any, np.dtype[np.int16]] | None:
        if self._pos >= len(sound):
            if not self._loop:
                return None
            self._pos = 0
        part = sound[self._pos : self._pos + n]
        self._pos += n
        while len(part) < n:
            if not self._loop:
                return np.concatenate([part, np.zeros(n - len(part), dtype="<i2")])
            more = sound[: n - len(part)]
            self._pos = len(more)
            part = np.concatenate([part, more])
        return part
