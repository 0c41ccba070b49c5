"""UtteranceEchoProcessor: plays each thing the caller said back to them.

A stand-in for STT → LLM → TTS that needs no service: it keeps the caller's audio from a little
before VAD declared speech (VAD starts only after ``start_secs`` of voice) until the user stopped
speaking, then pushes it out as bot speech. Used by the demo bot, the Pipecat-recipe tests and
the benchmarks.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    SpeechOutputAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class UtteranceEchoProcessor(FrameProcessor):
    """Buffers the caller's utterance and echoes it when the caller stops.

    ``preroll_secs`` of audio before the VAD start are included so the first syllable is not
    lost; ``max_secs`` bounds memory for a caller who never stops.
    """

    def __init__(self, *, preroll_secs: float = 0.4, max_secs: float = 15.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._preroll_secs = preroll_secs
        self._max_secs = max_secs
        self._preroll: deque[InputAudioRawFrame] = deque()
        self._preroll_dur = 0.0
        self._utterance: list[bytes] = []
        self._utterance_dur = 0.0
        self._speaking = False
        self._rate = 0
        self.utterances = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._collect(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserStartedSpeakingFrame) and direction is FrameDirection.DOWNSTREAM:
            self._speaking = True
            self._utterance = [f.audio for f in self._preroll]
            self._utterance_dur = self._preroll_dur
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserStoppedSpeakingFrame) and direction is FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
            await self._echo()
        else:
            await self.push_frame(frame, direction)

    def _collect(self, frame: InputAudioRawFrame) -> None:
        self._rate = frame.sample_rate
        duration = frame.num_frames / frame.sample_rate
        if self._speaking:
            if self._utterance_dur < self._max_secs:
                self._utterance.append(frame.audio)
                self._utterance_dur += duration
            return
        self._preroll.append(frame)
        self._preroll_dur += duration
        while self._preroll:
            oldest = self._preroll[0].num_frames / self._preroll[0].sample_rate
            if self._preroll_dur - oldest < self._preroll_secs - 1e-9:
                break
            self._preroll.popleft()
            self._preroll_dur -= oldest

    async def _echo(self) -> None:
        self._speaking = False
        audio = b"".join(self._utterance)
        self._utterance = []
        self._utterance_dur = 0.0
        self._preroll.clear()
        self._preroll_dur = 0.0
        if not audio or not self._rate:
            return
        self.utterances += 1
        await self.push_frame(TTSStartedFrame())
        await self.push_frame(SpeechOutputAudioRawFrame(audio, self._rate))
        await self.push_frame(TTSStoppedFrame())
