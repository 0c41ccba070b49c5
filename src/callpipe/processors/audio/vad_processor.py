"""VADProcessor: voice activity detection as a pipeline step (Pipecat 1.x style).

An alternative to ``vad_analyzer`` in the transport params: put it right after
``transport.input()``. It makes the same decisions (one :class:`VADController`) and pushes the
same frames as the transport would: ``VADUserStartedSpeakingFrame`` then
``UserStartedSpeakingFrame`` (downstream and upstream) and, when the pipeline allows
interruptions, an ``InterruptionFrame`` (barge-in); at the end of speech
``VADUserStoppedSpeakingFrame`` and ``UserStoppedSpeakingFrame``; ``UserSpeakingFrame`` every
``speech_activity_period`` while the caller speaks. If the caller's audio stops arriving
mid-speech for ``audio_idle_timeout`` seconds, the turn is ended (0 disables that).

Do not also give the transport a ``vad_analyzer``: the caller would start every turn twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from callpipe.audio.vad.vad_controller import SpeechChange, VADController
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    SpeechControlParamsFrame,
    StartFrame,
    StopInterruptionFrame,
    UserSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADParamsUpdateFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)


class VADProcessor(FrameProcessor):
    """Runs ``vad_analyzer`` on the caller's audio and turns its decisions into turn frames."""

    def __init__(
        self,
        *,
        vad_analyzer: Any,
        speech_activity_period: float = 0.2,
        audio_idle_timeout: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._controller = VADController(
            vad_analyzer,
            speech_activity_period=speech_activity_period,
            audio_idle_timeout=audio_idle_timeout,
        )
        self._idle_task: asyncio.Task[None] | None = None
        self._last_activity = 0.0

    @property
    def vad_controller(self) -> VADController:
        return self._controller

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self._analyze(frame)
            await self.push_frame(frame, direction)  # after any turn frames, as the transport
            return
        if isinstance(frame, VADParamsUpdateFrame):
            self._controller.vad_analyzer.set_params(frame.params)
            await self.broadcast_frame(SpeechControlParamsFrame, vad_params=frame.params)
            return
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._controller.set_sample_rate(frame.audio_in_sample_rate)
            if self._controller.audio_idle_timeout > 0:
                self._idle_task = self.create_task(self._watch_idle(), "vad-idle")
        elif isinstance(frame, EndFrame | CancelFrame):
            await self.cancel_task(self._idle_task)
            self._idle_task = None

    async def _analyze(self, frame: InputAudioRawFrame) -> None:
        controller = self._controller
        change = await controller.process_audio(frame.audio)
        if change is SpeechChange.STARTED:
            await self._speech_started()
        elif change is SpeechChange.STOPPED:
            await self._speech_stopped()
        elif controller.speaking:
            now = time.monotonic()
            if now - self._last_activity >= controller.speech_activity_period:
                self._last_activity = now
                await self.push_frame(UserSpeakingFrame())

    async def _speech_started(self) -> None:
        logger.debug("%s: user started speaking", self)
        self._last_activity = time.monotonic()
        await self.push_frame(
            VADUserStartedSpeakingFrame(start_secs=self._controller.params.start_secs)
        )
        await self.push_frame(UserStartedSpeakingFrame())
        await self.push_frame(UserStartedSpeakingFrame(), FrameDirection.UPSTREAM)
        if self.interruptions_allowed:
            await self.push_frame(InterruptionFrame())

    async def _speech_stopped(self) -> None:
        logger.debug("%s: user stopped speaking", self)
        await self.push_frame(
            VADUserStoppedSpeakingFrame(stop_secs=self._controller.params.stop_secs)
        )
        await self.push_frame(UserStoppedSpeakingFrame())
        await self.push_frame(UserStoppedSpeakingFrame(), FrameDirection.UPSTREAM)
        if self.interruptions_allowed:
            await self.push_frame(StopInterruptionFrame())

    async def _watch_idle(self) -> None:
        """End a turn whose audio stopped arriving (a dropped stream must not hold the turn)."""
        controller = self._controller
        timeout = controller.audio_idle_timeout
        while True:
            await asyncio.sleep(timeout / 4)
            idle = time.monotonic() - controller.last_audio_time
            if controller.speaking and idle >= timeout and await controller.force_stop():
                logger.debug("%s: no audio for %.1fs while speaking", self, idle)
                await self._speech_stopped()
