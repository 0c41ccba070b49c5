"""BaseInputTransport: caller audio in, VAD, user turns and barge-in.

Received audio is handled inline in the receive path (no queue, no thread pool): VAD scores it,
speaking transitions become ``UserStartedSpeakingFrame``/``UserStoppedSpeakingFrame`` (pushed
before the audio that triggered them), and a user start interrupts the bot when the pipeline
allows interruptions.
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.audio.vad.vad_controller import SpeechChange, VADController
from callpipe.frames.frames import (
    BotInterruptionFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EmulateUserStartedSpeakingFrame,
    EmulateUserStoppedSpeakingFrame,
    EndFrame,
    FilterControlFrame,
    Frame,
    InputAudioRawFrame,
    InputTransportStartAudioStreamingFrame,
    InterruptionFrame,
    SpeechControlParamsFrame,
    StartFrame,
    StopInterruptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADParamsUpdateFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.transports.base_transport import TransportParams
from callpipe.transports.record_hooks import current_recorder

logger = logging.getLogger(__name__)


class BaseInputTransport(FrameProcessor):
    """Input half of a transport. Subclasses feed received audio to :meth:`push_audio_frame`."""

    def __init__(self, params: TransportParams, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._params = params
        self._sample_rate = 0
        self._vad = params.vad_analyzer
        self._vad_controller = VADController(self._vad) if self._vad is not None else None
        self._user_speaking = False
        self._bot_speaking = False
        self._input_stopped = False
        recorder = current_recorder()  # a call recording, when one is kept
        self._recording = recorder.recording if recorder is not None else None
        self._filter = params.audio_in_filter
        self._streaming = params.audio_in_stream_on_start

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def vad_analyzer(self) -> Any:
        return self._vad

    # ------------------------------------------------------------------ lifecycle

    async def start(self, frame: StartFrame) -> None:
        self._sample_rate = self._params.audio_in_sample_rate or frame.audio_in_sample_rate
        if self._vad is not None:
            self._vad.set_sample_rate(self._sample_rate)
        if self._filter is not None:
            await self._filter.start(self._sample_rate)

    async def stop(self, frame: EndFrame) -> None:
        """Graceful end: stop pushing caller audio (subclasses may keep reading control data)."""
        self._input_stopped = True
        await self._stop_filter()

    async def cancel(self, frame: CancelFrame) -> None:
        self._input_stopped = True
        await self._stop_filter()

    async def _stop_filter(self) -> None:
        audio_filter, self._filter = self._filter, None
        if audio_filter is not None:
            try:
                await audio_filter.stop()
            except Exception:
                logger.exception("%s: audio_in_filter failed to stop", self)

    async def start_audio_in_streaming(self) -> None:
        """Start taking the caller's audio (for ``audio_in_stream_on_start=False``)."""
        self._streaming = True

    # ------------------------------------------------------------------ frames

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self.start(frame)
        elif isinstance(frame, CancelFrame):
            await self.cancel(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, EndFrame):
            await self.push_frame(frame, direction)
            await self.stop(frame)
        elif isinstance(frame, BotInterruptionFrame):
            await self._interrupt()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            await self.push_frame(frame, direction)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            await self.push_frame(frame, direction)
        elif isinstance(frame, EmulateUserStartedSpeakingFrame):
            await self._user_started(emulated=True)
        elif isinstance(frame, EmulateUserStoppedSpeakingFrame):
            await self._user_stopped(emulated=True)
        elif isinstance(frame, InputAudioRawFrame):
            await self.push_audio_frame(frame)  # injected audio takes the caller's path (VAD)
        elif isinstance(frame, InputTransportStartAudioStreamingFrame):
            await self.start_audio_in_streaming()
        elif isinstance(frame, FilterControlFrame) and self._filter is not None:
            await self._filter.process_frame(frame)
        elif isinstance(frame, VADParamsUpdateFrame) and self._vad is not None:
            self._vad.set_params(frame.params)
            await self.push_frame(SpeechControlParamsFrame(vad_params=frame.params))
        else:
            await self.push_frame(frame, direction)

    # ------------------------------------------------------------------ audio

    async def push_audio_frame(self, frame: InputAudioRawFrame) -> None:
        """Run VAD on received audio and pass it downstream."""
        if not self._params.audio_in_enabled or self._input_stopped or not self._streaming:
            return
        if self._recording is not None:
            self._recording.caller_audio(frame.audio, frame.sample_rate, self.clock.now())
        if self._filter is not None:
            frame = await self._filtered(frame)
            if not frame.audio:
                return
        if self._vad_controller is not None:
            await self._run_vad(frame.audio)
        if self._params.audio_in_passthrough:
            await self.push_frame(frame)

    async def _filtered(self, frame: InputAudioRawFrame) -> InputAudioRawFrame:
        """The frame with filtered audio; a failing filter is bypassed (logged once)."""
        try:
            audio = await self._filter.filter(frame.audio)
        except Exception:
            logger.exception("%s: audio_in_filter failed; passing audio unfiltered", self)
            self._filter = None
            return frame
        return InputAudioRawFrame(audio, frame.sample_rate, frame.num_channels)

    async def _run_vad(self, audio: bytes) -> None:
        assert self._vad_controller is not None and self._vad is not None
        change = await self._vad_controller.process_audio(audio)
        if change is SpeechChange.STARTED and not self._user_speaking:
            params = self._vad.params
            await self.push_frame(VADUserStartedSpeakingFrame(start_secs=params.start_secs))
            await self._user_started(emulated=False)
        elif change is SpeechChange.STOPPED and self._user_speaking:
            params = self._vad.params
            await self.push_frame(VADUserStoppedSpeakingFrame(stop_secs=params.stop_secs))
            await self._user_stopped(emulated=False)

    async def _user_started(self, *, emulated: bool) -> None:
        self._user_speaking = True
        logger.debug("%s: user started speaking", self)
        await self.push_frame(UserStartedSpeakingFrame(emulated=emulated))
        await self.push_frame(UserStartedSpeakingFrame(emulated=emulated), FrameDirection.UPSTREAM)
        if self.interruptions_allowed:
            await self._interrupt()

    async def _user_stopped(self, *, emulated: bool) -> None:
        self._user_speaking = False
        logger.debug("%s: user stopped speaking", self)
        await self.push_frame(UserStoppedSpeakingFrame(emulated=emulated))
        await self.push_frame(UserStoppedSpeakingFrame(emulated=emulated), FrameDirection.UPSTREAM)
        if self.interruptions_allowed:
            await self.push_frame(StopInterruptionFrame())

    async def _interrupt(self) -> None:
        """Barge-in: everything downstream drops queued bot output; the output sends a clear."""
        await self.push_frame(InterruptionFrame())
