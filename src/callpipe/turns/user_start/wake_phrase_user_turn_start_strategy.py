"""``WakePhraseUserTurnStartStrategy``: the caller is heard only after saying a wake phrase.

While the strategy is asleep the user aggregator ignores the caller: speech starts no turn and
cuts nothing off, and final transcripts are dropped unless one contains a wake phrase. That
transcript starts the turn (and is part of it). Then:

- by default the strategy stays awake until ``timeout`` seconds pass with no activity (the
  caller speaking or transcribed, the bot starting or finishing a reply);
- with ``single_activation=True`` it falls asleep again as soon as that turn was written to the
  context (or after ``timeout`` if the turn never ends).

Matching ignores case and punctuation ("Hey, Robot!" matches ``"hey robot"``) and looks at the
last few transcripts together, so a phrase split over two transcripts is still found. Events:
``on_wake_phrase_detected(strategy, phrase)`` and ``on_wake_phrase_timeout(strategy)``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from enum import Enum
from typing import Any

from callpipe.processors.base_object import create_logged_task
from callpipe.turns.user_turn_strategies import BaseUserTurnStartStrategy

logger = logging.getLogger(__name__)

_MAX_HEARD = 250
"""Characters of recent transcripts kept for matching."""

_PUNCTUATION = re.compile(r"[^\w\s]")


class WakeState(Enum):
    IDLE = "idle"
    AWAKE = "awake"


class WakePhraseUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """Ignore the caller until a wake phrase is heard (see the module docstring)."""

    def __init__(
        self,
        *,
        phrases: list[str],
        timeout: float = 10.0,
        single_activation: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.phrases = list(phrases)
        self.timeout = timeout
        self.single_activation = single_activation
        self._patterns = [
            re.compile(r"\b" + r"\s*".join(map(re.escape, p.split())) + r"\b", re.IGNORECASE)
            for p in self.phrases
        ]
        self._state = WakeState.IDLE
        self._heard = ""
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._register_event_handler("on_wake_phrase_detected")
        self._register_event_handler("on_wake_phrase_timeout")

    @property
    def state(self) -> WakeState:
        return self._state

    @property
    def awake(self) -> bool:
        return self._state is WakeState.AWAKE

    async def check_transcript(self, text: str) -> bool:
        """While asleep: whether ``text`` (with what came just before) holds a wake phrase; if
        so the strategy wakes up."""
        heard = f"{self._heard} {_PUNCTUATION.sub('', text)}"
        self._heard = heard[-_MAX_HEARD:]
        for phrase, pattern in zip(self.phrases, self._patterns, strict=True):
            if pattern.search(self._heard):
                logger.debug("%s: wake phrase %r heard", self, phrase)
                self._state = WakeState.AWAKE
                self._heard = ""
                self._arm()
                await self._call_event_handler("on_wake_phrase_detected", phrase)
                return True
        return False

    def activity(self) -> None:
        """The conversation goes on: an awake strategy (timeout mode) stays awake longer."""
        if self.awake and not self.single_activation:
            self._arm()

    def turn_ended(self) -> None:
        """The turn was written to the context: single activation falls asleep."""
        if self.awake and self.single_activation:
            self._sleep()

    def _arm(self) -> None:
        self._cancel()
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expired)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.awake:
            self._sleep()
            self._task = create_logged_task(
                self._call_event_handler("on_wake_phrase_timeout"), "wake-phrase-timeout"
            )

    def _sleep(self) -> None:
        logger.debug("%s: asleep, waiting for a wake phrase", self)
        self._cancel()
        self._state = WakeState.IDLE
        self._heard = ""

    async def cleanup(self) -> None:
        self._cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
