"""WakeCheckFilter: let the caller's transcriptions through only after a wake phrase.

Deprecated in Pipecat (since 0.0.106, to be removed in 2.0) in favour of turn-start
strategies; kept here so bots that use it run unchanged.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from enum import Enum
from typing import Any

from callpipe.frames.frames import Frame, TranscriptionFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)

_MAX_HEARD = 2000
"""Characters of unmatched speech kept per participant while waiting for a wake phrase."""


class WakeState(Enum):
    IDLE = 1
    AWAKE = 2


@dataclass
class ParticipantState:
    """What the filter knows of one participant (``TranscriptionFrame.user_id``)."""

    participant_id: str
    state: WakeState = WakeState.IDLE
    wake_timer: float = 0.0
    """Loop time of the last transcription let through."""
    accumulator: str = ""
    """Speech heard since the last wake phrase, searched for the next one."""


class WakeCheckFilter(FrameProcessor):
    """Drops each participant's ``TranscriptionFrame`` until one of ``wake_phrases`` is heard.

    Phrases match whole words, case-insensitively, across transcription pieces (what was
    heard is kept until a phrase turns up). The frame that completes a phrase passes with its
    text starting at the phrase; later transcriptions pass while each comes within
    ``keepalive_timeout`` seconds of the previous one passed, after which the phrase is needed
    again. Other frames always pass.
    """

    WakeState = WakeState
    ParticipantState = ParticipantState

    def __init__(
        self, wake_phrases: list[str], keepalive_timeout: float = 3, **kwargs: Any
    ) -> None:
        warnings.warn(
            "WakeCheckFilter is deprecated (Pipecat 0.0.106) and goes away in Pipecat 2.0",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(**kwargs)
        self._keepalive_timeout = keepalive_timeout
        self._participants: dict[str, ParticipantState] = {}
        self._patterns = [
            re.compile(r"\b" + r"\s*".join(map(re.escape, phrase.split())) + r"\b", re.IGNORECASE)
            for phrase in wake_phrases
        ]

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, TranscriptionFrame):
            await self.push_frame(frame, direction)
            return
        who = self._participants.get(frame.user_id)
        if who is None:
            who = self._participants[frame.user_id] = ParticipantState(frame.user_id)
        now = self.clock.now()
        if who.state is WakeState.AWAKE:
            if now - who.wake_timer < self._keepalive_timeout:
                who.wake_timer = now
                await self.push_frame(frame, direction)
                return
            who.state = WakeState.IDLE
        who.accumulator = (who.accumulator + frame.text)[-_MAX_HEARD:]
        for pattern in self._patterns:
            match = pattern.search(who.accumulator)
            if match is not None:
                logger.debug("%s: wake phrase heard: %r", self, match.group())
                who.state = WakeState.AWAKE
                who.wake_timer = now
                frame.text = who.accumulator[match.start() :]
                who.accumulator = ""
                await self.push_frame(frame, direction)
                return
