"""User mute strategies: each sees every frame reaching the user aggregator and says "mute".

The aggregator mutes while *any* strategy says so. Bot speaking state comes from
``BotStartedSpeakingFrame``/``BotStoppedSpeakingFrame``, which callpipe's output transport sends
from playback marks: "the bot's first sentence" ends when the caller has heard it, not when it
was sent.
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
)

logger = logging.getLogger(__name__)


class BaseUserMuteStrategy:
    """Override :meth:`process_frame`; return True while the caller should be muted."""

    def __init__(self, **kwargs: Any) -> None:
        self.name = type(self).__name__

    async def setup(self, setup: Any) -> None:
        """Called once when the aggregator's pipeline is set up."""

    async def cleanup(self) -> None:
        """Called when the aggregator is cleaned up."""

    async def process_frame(self, frame: Frame) -> bool:
        return False

    def __str__(self) -> str:
        return self.name


class AlwaysUserMuteStrategy(BaseUserMuteStrategy):
    """Mute whenever the bot is speaking (no barge-in at all)."""

    def __init__(self) -> None:
        super().__init__()
        self._bot_speaking = False

    async def process_frame(self, frame: Frame) -> bool:
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        return self._bot_speaking


class FirstSpeechUserMuteStrategy(BaseUserMuteStrategy):
    """Mute during the bot's first speech only (the caller may talk before it starts)."""

    def __init__(self) -> None:
        super().__init__()
        self._bot_speaking = False
        self._first_done = False

    async def process_frame(self, frame: Frame) -> bool:
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            self._first_done = True
        return self._bot_speaking and not self._first_done


class MuteUntilFirstBotCompleteUserMuteStrategy(BaseUserMuteStrategy):
    """Mute from the start of the call until the bot's first speech was heard in full.

    An error before the bot made any sound releases the mute: otherwise a failed greeting would
    leave a caller who can never be heard.
    """

    def __init__(self) -> None:
        super().__init__()
        self._bot_started = False
        self._first_done = False

    async def process_frame(self, frame: Frame) -> bool:
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_started = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._first_done = True
        elif isinstance(frame, ErrorFrame) and not self._bot_started and not self._first_done:
            logger.warning("%s: releasing the mute after an error before the greeting", self)
            self._first_done = True
        return not self._first_done


class FunctionCallUserMuteStrategy(BaseUserMuteStrategy):
    """Mute while any function call is running."""

    def __init__(self) -> None:
        super().__init__()
        self._running: set[str] = set()

    async def process_frame(self, frame: Frame) -> bool:
        if isinstance(frame, FunctionCallsStartedFrame):
            self._running.update(call.tool_call_id for call in frame.function_calls)
        elif isinstance(frame, FunctionCallResultFrame | FunctionCallCancelFrame):
            self._running.discard(frame.tool_call_id)
        return bool(self._running)
