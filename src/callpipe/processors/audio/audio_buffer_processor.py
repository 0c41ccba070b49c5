"""AudioBufferProcessor: record the call, caller and bot, aligned as the caller heard it.

Place it right after ``transport.output()``. Caller audio (``InputAudioRawFrame``) reaches it as
it arrives from the phone; callpipe's output transport passes each bot audio frame on only once
the caller has *heard* it (playback marks or the real-time estimate), so the bot track holds
exactly what was played: audio cleared by a barge-in never reaches the recording.

Placement on one timeline (samples since recording started):

- the caller track is written contiguously; a gap in arrivals longer than ``_GAP_SECS`` (a
  network stall) is kept as silence;
- bot audio frames carry ``pts``: callpipe's output stamps each one, as it passes it on, with
  the clock time its last sample played (its playback schedule, re-anchored when the provider
  ran dry), so each frame lands where it was heard, underrun gaps included. Without a stamp
  (another transport) the track starts each stretch of speech at ``BotStartedSpeakingFrame``
  and continues contiguously, keeping release gaps longer than ``_GAP_SECS`` as silence.

``buffer_size`` (bytes per track) bounds memory: whenever a track reaches it, the aligned part
of both tracks is handed to ``on_audio_data`` / ``on_track_audio_data`` and dropped, so a
one-hour call never holds an hour of audio. With ``buffer_size=0`` everything is kept until
:meth:`stop_recording` (or the end of the call).

Events (Pipecat 1.14 names and arguments): ``on_audio_data(processor, audio, sample_rate,
num_channels)`` (mono: mixed; stereo: caller left, bot right), ``on_track_audio_data(processor,
user_audio, bot_audio, sample_rate, num_channels)``, and with ``enable_turn_audio=True``
``on_user_turn_audio_data`` / ``on_bot_turn_audio_data(processor, audio, sample_rate,
num_channels)`` and ``on_user_turn_audio`` / ``on_bot_turn_audio(processor, TurnAudioData)``
at the end of each caller turn (with up to one second of audio before it) and bot turn;
``on_recording_started`` / ``on_recording_stopped``. Start and stop with :meth:`start_recording`
/ :meth:`stop_recording`, ``auto_start_recording=True``, or ``AudioBufferStartRecordingFrame`` /
``AudioBufferStopRecordingFrame`` (in order with the audio ahead of them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from callpipe.audio.resample import StreamResampler
from callpipe.frames.frames import (
    AudioBufferStartRecordingFrame,
    AudioBufferStopRecordingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    StartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)

_GAP_SECS = 0.25
"""A track more than this far behind the timeline is padded with silence (real gap)."""

_PTS_SLACK_SAMPLES = 16
"""Bot audio stamped with its play time: closer than this (2 ms at 8 kHz) stays contiguous."""


@dataclass
class TurnAudioData:
    """One speaker's audio for one turn."""

    turn_number: int
    audio: bytes
    sample_rate: int
    num_channels: int


class _Track:
    """One speaker's PCM, with its position on the shared timeline (in samples)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.base = 0  # samples already handed out and dropped

    @property
    def end(self) -> int:
        return self.base + len(self.buf) // 2

    def pad_to(self, position: int) -> None:
        if position > self.end:
            self.buf += bytes(2 * (position - self.end))

    def take(self, samples: int) -> bytes:
        """The first ``samples`` samples (silence-padded), removed from the track."""
        self.pad_to(self.base + samples)
        out = bytes(self.buf[: 2 * samples])
        del self.buf[: 2 * samples]
        self.base += samples
        return out


def mix_mono(a: bytes, b: bytes) -> bytes:
    """Sum two equal-length PCM16 tracks with clipping."""
    x = np.frombuffer(a, dtype=np.int16).astype(np.int32)
    y = np.frombuffer(b, dtype=np.int16).astype(np.int32)
    return bytes(np.clip(x + y, -32768, 32767).astype(np.int16).tobytes())


def interleave(left: bytes, right: bytes) -> bytes:
    """Two equal-length PCM16 tracks as one stereo stream (left first)."""
    stereo = np.empty(len(left), dtype=np.int16)  # 2 channels x (len/2) samples
    stereo[0::2] = np.frombuffer(left, dtype=np.int16)
    stereo[1::2] = np.frombuffer(right, dtype=np.int16)
    return bytes(stereo.tobytes())


class AudioBufferProcessor(FrameProcessor):
    """Call recorder (see the module docstring)."""

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        num_channels: int = 1,
        buffer_size: int = 0,
        enable_turn_audio: bool = False,
        auto_start_recording: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_channels not in (1, 2):
            raise ValueError(f"num_channels must be 1 or 2, got {num_channels}")
        self._init_sample_rate = sample_rate
        self._sample_rate = 0
        self._num_channels = num_channels
        self._buffer_size = buffer_size
        self._enable_turn_audio = enable_turn_audio
        self._auto_start = auto_start_recording
        self._recording = False
        self._t0 = 0.0
        self._user = _Track()
        self._bot = _Track()
        self._resamplers: dict[tuple[str, int], StreamResampler] = {}
        self._user_speaking = False
        self._bot_speaking = False
        self._turn = 0
        self._user_turn = bytearray()
        self._bot_turn = bytearray()
        for event in (
            "on_audio_data",
            "on_track_audio_data",
            "on_user_turn_audio_data",
            "on_bot_turn_audio_data",
            "on_user_turn_audio",
            "on_bot_turn_audio",
            "on_recording_started",
            "on_recording_stopped",
        ):
            self._register_event_handler(event)

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def recording(self) -> bool:
        return self._recording

    def buffered_bytes(self) -> int:
        """Bytes held now (both tracks): bounded by about 2 x ``buffer_size`` when it is set."""
        return len(self._user.buf) + len(self._bot.buf)

    def has_audio(self) -> bool:
        return any(self._user.buf) or any(self._bot.buf)

    def merge_audio_buffers(self) -> bytes:
        """Both tracks so far (not removed), mixed (mono) or interleaved (stereo)."""
        length = max(len(self._user.buf), len(self._bot.buf))
        user = bytes(self._user.buf) + bytes(length - len(self._user.buf))
        bot = bytes(self._bot.buf) + bytes(length - len(self._bot.buf))
        return mix_mono(user, bot) if self._num_channels == 1 else interleave(user, bot)

    # ------------------------------------------------------------------ recording control

    async def start_recording(self) -> None:
        if self._recording:
            return
        if not self._sample_rate:
            logger.warning("%s: start_recording before the pipeline started; ignored", self)
            return
        self._recording = True
        self._t0 = self.clock.now()
        self._user = _Track()
        self._bot = _Track()
        self._resamplers.clear()
        await self._call_event_handler("on_recording_started")

    async def stop_recording(self) -> None:
        """Hand out everything still buffered, then stop."""
        if not self._recording:
            return
        length = max(self._user.end, self._bot.end) - self._user.base
        await self._emit(length)
        self._recording = False
        await self._call_event_handler("on_recording_stopped")

    # ------------------------------------------------------------------ frames

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._sample_rate = self._init_sample_rate or frame.audio_out_sample_rate
            await self.push_frame(frame, direction)
            if self._auto_start:
                await self.start_recording()
            return
        if isinstance(frame, EndFrame | CancelFrame):
            await self.stop_recording()
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, AudioBufferStartRecordingFrame):
            await self.start_recording()
        elif isinstance(frame, AudioBufferStopRecordingFrame):
            await self.stop_recording()
        if self._recording and direction is FrameDirection.DOWNSTREAM:
            await self._record(frame)
        await self.push_frame(frame, direction)

    def _position(self) -> int:
        return round((self.clock.now() - self._t0) * self._sample_rate)

    def _pcm(self, kind: str, audio: bytes, rate: int) -> bytes:
        if rate == self._sample_rate:
            return audio
        key = (kind, rate)
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = self._resamplers[key] = StreamResampler(rate, self._sample_rate)
        return bytes(resampler.resample(audio))

    async def _record(self, frame: Frame) -> None:
        gap = round(_GAP_SECS * self._sample_rate)
        if isinstance(frame, InputAudioRawFrame):
            pcm = self._pcm("user", frame.audio, frame.sample_rate)
            start = self._position() - len(pcm) // 2
            if start > self._user.end + gap:
                self._user.pad_to(start)
            self._user.buf += pcm
            await self._turn_audio_user(pcm)
        elif isinstance(frame, OutputAudioRawFrame):
            pcm = self._pcm("bot", frame.audio, frame.sample_rate)
            if frame.pts is not None:
                # The output stamped when the frame's last sample played: exact placement,
                # including the gap of an underrun.
                end = round((frame.pts / 1e9 - self._t0) * self._sample_rate)
                start = end - len(pcm) // 2
                if start > self._bot.end + _PTS_SLACK_SAMPLES:
                    self._bot.pad_to(start)
            else:
                start = self._position() - len(pcm) // 2
                if start > self._bot.end + gap:
                    self._bot.pad_to(start)
            self._bot.buf += pcm
            if self._enable_turn_audio:
                self._bot_turn += pcm
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            self._bot.pad_to(self._position())
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            await self._end_bot_turn()
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._user_speaking = True
            self._turn += 1
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_speaking = False
            await self._end_user_turn()
        if self._buffer_size > 0 and max(len(self._user.buf), len(self._bot.buf)) >= (
            self._buffer_size
        ):
            await self._emit_aligned()

    async def _emit_aligned(self) -> None:
        """Hand out the part of the timeline both tracks already cover.

        A silent bot covers everything up to the caller's latest audio; a speaking bot's track
        ends where its last heard frame ended, and the caller's audio after that waits.
        """
        if not self._bot_speaking:
            self._bot.pad_to(self._user.end)
        await self._emit(min(self._user.end, self._bot.end) - self._user.base)

    async def _emit(self, samples: int) -> None:
        if samples <= 0:
            return
        user = self._user.take(samples)
        bot = self._bot.take(samples)
        rate, channels = self._sample_rate, self._num_channels
        if self.has_event_handlers("on_audio_data"):
            merged = mix_mono(user, bot) if channels == 1 else interleave(user, bot)
            await self._call_event_handler("on_audio_data", merged, rate, channels)
        await self._call_event_handler("on_track_audio_data", user, bot, rate, channels)

    # ------------------------------------------------------------------ turn audio

    async def _turn_audio_user(self, pcm: bytes) -> None:
        if not self._enable_turn_audio:
            return
        self._user_turn += pcm
        if not self._user_speaking:
            keep = 2 * self._sample_rate  # one second of lead-in before the turn
            if len(self._user_turn) > keep:
                del self._user_turn[: len(self._user_turn) - keep]

    async def _end_user_turn(self) -> None:
        if not self._enable_turn_audio:
            return
        audio, self._user_turn = bytes(self._user_turn), bytearray()
        rate = self._sample_rate
        await self._call_event_handler("on_user_turn_audio_data", audio, rate, 1)
        await self._call_event_handler(
            "on_user_turn_audio", TurnAudioData(self._turn, audio, rate, 1)
        )

    async def _end_bot_turn(self) -> None:
        if not self._enable_turn_audio or not self._bot_turn:
            return
        audio, self._bot_turn = bytes(self._bot_turn), bytearray()
        rate = self._sample_rate
        await self._call_event_handler("on_bot_turn_audio_data", audio, rate, 1)
        await self._call_event_handler(
            "on_bot_turn_audio", TurnAudioData(self._turn, audio, rate, 1)
        )
