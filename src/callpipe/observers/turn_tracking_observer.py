"""Pipecat 1.x ``TurnTrackingObserver``: numbers the turns of a call and times each one.

A turn is one exchange: the caller speaks (or, for the first turn, the call starts), then the
bot answers. The worker makes one on demand (``worker.turn_tracking_observer``), so a bot that
never asks for it pays nothing per frame.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    StartFrame,
    UserStartedSpeakingFrame,
)
from callpipe.observers.base_observer import BaseObserver, FramePushed

logger = logging.getLogger(__name__)


class TurnTrackingObserver(BaseObserver):
    """Reports when each turn starts and ends.

    Turn 1 starts with the ``StartFrame``; later turns start when the caller starts speaking.
    A turn ends when the caller speaks again after the bot has spoken (an interruption if the
    bot was still talking), when the bot has been quiet for ``turn_end_timeout_secs`` after
    speaking (a reply that pauses, e.g. around a function call, stays one turn), or when the
    pipeline ends (counted as interrupted).

    Events: ``on_turn_started(observer, turn_number)`` and
    ``on_turn_ended(observer, turn_number, duration_secs, was_interrupted)``; durations come
    from the pipeline clock.
    """

    def __init__(
        self, max_frames: int | None = None, turn_end_timeout_secs: float = 2.5, **kwargs: Any
    ) -> None:
        super().__init__(observe_every_push=False, **kwargs)
        del max_frames  # accepted for Pipecat code; each frame is seen once anyway
        self._turn_end_timeout_secs = turn_end_timeout_secs
        self._turn_count = 0
        self._turn_active = False
        self._bot_speaking = False
        self._bot_spoke = False
        self._turn_started_at = 0
        self._end_timer: asyncio.TimerHandle | None = None
        self._end_tasks: set[asyncio.Task[None]] = set()
        self._register_event_handler("on_turn_started")
        self._register_event_handler("on_turn_ended")

    @property
    def turn_count(self) -> int:
        """Turns started so far (the number of the current or last turn)."""
        return self._turn_count

    @property
    def is_turn_active(self) -> bool:
        return self._turn_active

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, UserStartedSpeakingFrame):
            await self._user_started(data.timestamp)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            self._bot_spoke = True
            self._cancel_end_timer()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            # Also sent after an interruption, when the turn already moved on: only a bot that
            # was speaking in this turn arms the end-of-turn timer.
            if self._bot_speaking:
                self._bot_speaking = False
                self._arm_end_timer(data.timestamp)
        elif isinstance(frame, StartFrame):
            if self._turn_count == 0:
                await self._start_turn(data.timestamp)
        elif isinstance(frame, EndFrame | CancelFrame):
            self._cancel_end_timer()
            await self._end_turn(data.timestamp, interrupted=True)

    async def cleanup(self) -> None:
        """Drop a pending end-of-turn timer (the pipeline is gone)."""
        self._cancel_end_timer()

    # ------------------------------------------------------------------ internals

    async def _user_started(self, timestamp: int) -> None:
        if self._bot_speaking:  # barge-in: the bot's turn is cut short
            self._cancel_end_timer()
            await self._end_turn(timestamp, interrupted=True)
            self._bot_speaking = False
            await self._start_turn(timestamp)
        elif self._turn_active and self._bot_spoke:  # the caller answered the bot
            self._cancel_end_timer()
            await self._end_turn(timestamp, interrupted=False)
            await self._start_turn(timestamp)
        elif not self._turn_active:
            await self._start_turn(timestamp)
        # else: the caller speaks again before the bot answered: still the same turn

    def _arm_end_timer(self, timestamp: int) -> None:
        self._cancel_end_timer()
        loop = asyncio.get_running_loop()
        self._end_timer = loop.call_later(
            self._turn_end_timeout_secs, self._end_timer_fired, loop, timestamp
        )

    def _end_timer_fired(self, loop: asyncio.AbstractEventLoop, timestamp: int) -> None:
        self._end_timer = None
        if self._turn_active and not self._bot_speaking:
            task = loop.create_task(
                self._end_turn(timestamp, interrupted=False), name=f"{self}:turn-end"
            )
            self._end_tasks.add(task)
            task.add_done_callback(self._end_tasks.discard)

    def _cancel_end_timer(self) -> None:
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None

    async def _start_turn(self, timestamp: int) -> None:
        self._turn_active = True
        self._bot_spoke = False
        self._turn_count += 1
        self._turn_started_at = timestamp
        logger.debug("%s: turn %d started", self, self._turn_count)
        await self._call_event_handler("on_turn_started", self._turn_count)

    async def _end_turn(self, timestamp: int, *, interrupted: bool) -> None:
        if not self._turn_active:
            return
        self._turn_active = False
        duration = (timestamp - self._turn_started_at) / 1_000_000_000
        logger.debug(
            "%s: turn %d %s after %.2fs",
            self,
            self._turn_count,
            "interrupted" if interrupted else "completed",
            duration,
        )
        await self._call_event_handler("on_turn_ended", self._turn_count, duration, interrupted)
