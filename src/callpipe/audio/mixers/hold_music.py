"""HoldMusicMixer: music for a caller on hold (a warm transfer), off until a frame turns it on.

The default tune is generated at start with numpy (a slow four-chord arpeggio of soft tones in
the telephone band, about 8 s, looped), so it ships with the code, needs no file and carries no
third-party rights. Pass ``file=`` for your own recording: WAV is read with the standard
library; other formats need ``soundfile`` (``pip install 'callpipe[soundfile]'``).

Control with the ordinary mixer frames, in order with the bot's audio:
``MixerEnableFrame(True)`` starts the music from its beginning, ``MixerEnableFrame(False)``
stops it, ``MixerUpdateSettingsFrame({"volume": 0.3})`` changes the level.
"""

from __future__ import annotations

import logging
import wave
from typing import Any

import numpy as np

from callpipe.audio.mixers.base_audio_mixer import BaseAudioMixer
from callpipe.audio.resample import resample_once
from callpipe.errors import MissingDependencyError
from callpipe.frames.frames import MixerControlFrame, MixerEnableFrame, MixerUpdateSettingsFrame

logger = logging.getLogger(__name__)

Pcm = np.ndarray[Any, np.dtype[np.int16]]

# C major, A minor, F major, G major, one arpeggio of four notes each (Hz).
_CHORDS = (
    (261.63, 329.63, 392.00, 523.25),
    (220.00, 261.63, 329.63, 440.00),
    (174.61, 220.00, 261.63, 349.23),
    (196.00, 246.94, 293.66, 392.00),
)
_NOTE_SECS = 0.5
_RING_SECS = 1.4  # each note rings on under the next ones
_PEAK = 0.3  # of full scale, before the mixer's volume


def hold_tune(sample_rate: int) -> Pcm:
    """The default hold music: PCM16 mono at ``sample_rate``, one loop (8 s)."""
    note_n = int(sample_rate * _NOTE_SECS)
    ring_n = int(sample_rate * _RING_SECS)
    total = note_n * 4 * len(_CHORDS)
    out = np.zeros(total + ring_n, dtype=np.float64)
    t = np.arange(ring_n) / sample_rate
    attack = np.minimum(1.0, t / 0.02)  # 20 ms attack: no click
    envelope = attack * np.exp(-t * 2.2)
    for c, chord in enumerate(_CHORDS):
        for i, freq in enumerate(chord):
            start = (c * 4 + i) * note_n
            # A touch of the second harmonic makes it sound less like a test tone.
            note = np.sin(2 * np.pi * freq * t) + 0.25 * np.sin(4 * np.pi * freq * t)
            out[start : start + ring_n] += note * envelope
    out[:ring_n] += out[total:]  # the last notes' tails ring into the loop's start
    out = out[:total]
    out *= _PEAK / np.max(np.abs(out))
    return np.round(out * 32767).astype("<i2")


def _read_file(path: str, sample_rate: int) -> Pcm:
    rate: int
    if path.lower().endswith(".wav"):
        with wave.open(path, "rb") as w:
            if w.getsampwidth() != 2:
                raise ValueError("WAV must be 16-bit PCM (or install soundfile and use FLAC/OGG)")
            rate, channels = w.getframerate(), w.getnchannels()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        if channels > 1:
            data = data.reshape(-1, channels).mean(axis=1).astype("<i2")
    else:
        try:
            import soundfile
        except ImportError as exc:
            raise MissingDependencyError("soundfile", "soundfile") from exc
        frames, rate = soundfile.read(path, dtype="int16", always_2d=True)
        data = frames.mean(axis=1).astype("<i2")
    pcm = data.tobytes()
    if rate != sample_rate:
        pcm = resample_once(pcm, int(rate), sample_rate)
    return np.frombuffer(pcm, dtype="<i2")


class HoldMusicMixer(BaseAudioMixer):
    """Hold music mixed by the output transport; silent until ``MixerEnableFrame(True)``."""

    def __init__(
        self, *, file: str | None = None, volume: float = 0.6, enabled: bool = False
    ) -> None:
        self._file = file
        self._volume = volume
        self._enabled = enabled
        self._music: Pcm = np.zeros(0, dtype="<i2")
        self._pos = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def start(self, sample_rate: int) -> None:
        if self._file:
            try:
                self._music = _read_file(self._file, sample_rate)
                return
            except MissingDependencyError:
                raise
            except Exception as exc:  # a bad file falls back to the built-in tune
                logger.error(
                    "hold music %s unreadable (%s); using the built-in tune", self._file, exc
                )
        self._music = hold_tune(sample_rate)

    async def stop(self) -> None:
        self._pos = 0

    async def process_frame(self, frame: MixerControlFrame) -> None:
        if isinstance(frame, MixerEnableFrame):
            if frame.enable and not self._enabled:
                self._pos = 0  # every hold starts at the top of the tune
            self._enabled = frame.enable
        elif isinstance(frame, MixerUpdateSettingsFrame):
            volume = frame.settings.get("volume")
            if isinstance(volume, int | float):
                self._volume = float(volume)

    async def mix(self, audio: bytes) -> bytes:
        music = self._music
        if not self._enabled or not len(music):
            return audio
        bot = np.frombuffer(audio, dtype="<i2", count=len(audio) // 2)
        n = len(bot)
        idx = (self._pos + np.arange(n)) % len(music)
        self._pos = (self._pos + n) % len(music)
        mixed = bot.astype(np.int32) + (music[idx].astype(np.float32) * self._volume).astype(
            np.int32
        )
        return np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
