"""UserIdleProcessor: call back when the caller has said nothing for ``timeout`` seconds.

The standalone form of the 1.14 user aggregator's ``user_idle_timeout`` (see
:class:`~callpipe.turns.user_idle_controller.UserIdleController`, which does the timing): the
silence is counted from the moment the bot's audio *finished playing* on the phone
(``BotStoppedSpeakingFrame`` follows the provider's playback marks), never from when the audio
was sent, so a long reply sent in a burst does not trigger a prompt while it is still playing.

``callback(processor)`` or ``callback(processor, retry_count)``; with the second form the
callback returns whether to keep watching (False stops until the caller speaks again), and
``retry_count`` counts the prompts since the caller last spoke. Place it after
``transport.input()``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    UserStartedSpeakingFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.turns.user_idle_controller import UserIdleController

logger = logging.getLogger(__name__)

IdleCallback = Callable[..., Awaitable[Any]]


class UserIdleProcessor(FrameProcessor):
    """See the module docstring."""

    def __init__(self, *, callback: IdleCallback, timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._callback = callback
        self._with_retries = len(inspect.signature(callback).parameters) >= 2
        self._controller = UserIdleController(timeout, self._on_idle)
        self._retry_count = 0
        self._stopped = False

    @property
    def retry_count(self) -> int:
        return self._retry_count

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, EndFrame | CancelFrame):
            self._controller.close()
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._retry_count = 0
            self._stopped = False
        if not self._stopped:
            self._controller.process_frame(frame)
        await self.push_frame(frame, direction)

    async def _on_idle(self) -> None:
        self._retry_count += 1
        logger.debug("%s: caller idle (prompt %d)", self, self._retry_count)
        if not self._with_retries:
            await self._callback(self)
            return
        keep = await self._callback(self, self._retry_count)
        if keep is False:
            self._stopped = True
            self._controller.cancel()

    async def cleanup(self) -> None:
        self._controller.close()
        await super().cleanup()
