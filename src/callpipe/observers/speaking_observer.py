"""Pipecat 1.x ``SpeakingObserver``: every change of who is speaking, as it happens.

Two layers for the caller: ``user_speech_*`` is what the VAD heard (coughs and false starts
included), ``user_turn_*`` is the turn the pipeline acted on. Moments that close a stretch of
speech carry when it began, so an interval reads from one event; what makes a "turn" is left
to the reader (see :class:`~callpipe.observers.turn_tracking_observer.TurnTrackingObserver`
for one definition).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.observers.base_observer import BaseObserver, FramePushed
from callpipe.processors.frame_processor import FrameDirection


class SpeechEventKind(StrEnum):
    """Who started or stopped, and at which layer (VAD speech or pipeline turn)."""

    USER_SPEECH_STARTED = "user_speech_started"
    USER_SPEECH_STOPPED = "user_speech_stopped"
    USER_TURN_STARTED = "user_turn_started"
    USER_TURN_STOPPED = "user_turn_stopped"
    BOT_SPEECH_STARTED = "bot_speech_started"
    BOT_SPEECH_STOPPED = "bot_speech_stopped"
    INTERRUPTION = "interruption"


class SpeechEvent(BaseModel):
    """One moment (Unix ``timestamp``); ``started_at`` on the moments that end a stretch.

    VAD moments are placed when the speech itself started or stopped: the VAD's decision less
    the ``start_secs`` / ``stop_secs`` it needed to be sure.
    """

    kind: SpeechEventKind
    timestamp: float
    started_at: float | None = None


_CLOSES = {
    SpeechEventKind.USER_SPEECH_STOPPED: SpeechEventKind.USER_SPEECH_STARTED,
    SpeechEventKind.USER_TURN_STOPPED: SpeechEventKind.USER_TURN_STARTED,
    SpeechEventKind.BOT_SPEECH_STOPPED: SpeechEventKind.BOT_SPEECH_STARTED,
}


class SpeakingObserver(BaseObserver):
    """Event ``on_speech_event(observer, event)`` with a :class:`SpeechEvent` per moment."""

    def __init__(self, *, time_source: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(observe_every_push=False, **kwargs)
        self._now = time_source
        self._open: dict[SpeechEventKind, float] = {}
        self._kinds: dict[type[Frame], SpeechEventKind | None] = {}  # per class, see _kind_of
        self._register_event_handler("on_speech_event")

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        # A broadcast frame comes as two twins, each first-pushed once: keep the downstream one.
        if frame.broadcast_sibling_id is not None and data.direction is FrameDirection.UPSTREAM:
            return
        moment = self._moment(frame)
        if moment is None:
            return
        kind, at = moment
        started_at = None
        if kind in _CLOSES:
            started_at = self._open.pop(_CLOSES[kind], None)
        elif kind is not SpeechEventKind.INTERRUPTION:
            self._open[kind] = at
        event = SpeechEvent(kind=kind, timestamp=at, started_at=started_at)
        await self._call_event_handler("on_speech_event", event)

    def _moment(self, frame: Frame) -> tuple[SpeechEventKind, float] | None:
        if isinstance(frame, VADUserStartedSpeakingFrame):
            decided = frame.timestamp or self._now()  # callpipe's VAD leaves timestamp at 0
            return SpeechEventKind.USER_SPEECH_STARTED, decided - frame.start_secs
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            decided = frame.timestamp or self._now()
            return SpeechEventKind.USER_SPEECH_STOPPED, decided - frame.stop_secs
        cls = type(frame)
        try:
            kind = self._kinds[cls]
        except KeyError:  # first frame of this class: one subclass walk, then a dict hit
            kind = self._kinds[cls] = _kind_of(cls)
        if kind is None:
            return None
        return kind, self._now()


def _kind_of(cls: type[Frame]) -> SpeechEventKind | None:
    """The moment a frame class stands for (first match by subclass), None for the rest."""
    for base, kind in _KINDS.items():
        if issubclass(cls, base):
            return kind
    return None


_KINDS: dict[type[Frame], SpeechEventKind] = {
    UserStartedSpeakingFrame: SpeechEventKind.USER_TURN_STARTED,
    UserStoppedSpeakingFrame: SpeechEventKind.USER_TURN_STOPPED,
    BotStartedSpeakingFrame: SpeechEventKind.BOT_SPEECH_STARTED,
    BotStoppedSpeakingFrame: SpeechEventKind.BOT_SPEECH_STOPPED,
    InterruptionFrame: SpeechEventKind.INTERRUPTION,
}
