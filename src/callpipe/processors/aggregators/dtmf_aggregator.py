"""DTMFAggregator: keypad presses become one "DTMF: 1234#" user transcript for the LLM.

Place it right after ``transport.input()``. Digits are collected until the termination digit
(``#`` by default), ``timeout`` seconds without a new digit, or the end of the call; then a
``TranscriptionFrame`` with ``prefix + digits`` goes downstream, where the user aggregator adds
it to the context and runs the LLM like anything the caller said. The first digit of an entry
interrupts the bot (a caller typing is a caller answering): the aggregator asks the input
transport to interrupt, so the output clears exactly as for speech.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from callpipe.frames.frames import (
    BotInterruptionFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputDTMFFrame,
    KeypadEntry,
    TranscriptionFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)


class DTMFAggregator(FrameProcessor):
    """Collects keypad digits into one transcript (see the module docstring)."""

    def __init__(
        self,
        timeout: float = 2.0,
        termination_digit: KeypadEntry | str = KeypadEntry.POUND,
        prefix: str = "DTMF: ",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._timeout = timeout
        self._termination = KeypadEntry(termination_digit)
        self._prefix = prefix
        self._digits = ""
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> str:
        """Digits collected and not yet sent."""
        return self._digits

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame):
            await self.push_frame(frame, direction)
            await self._on_digit(frame.button)
        elif isinstance(frame, EndFrame | CancelFrame):
            await self._flush()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _on_digit(self, button: KeypadEntry) -> None:
        first = not self._digits
        self._digits += button.value
        if first and self.interruptions_allowed:
            await self.push_frame(BotInterruptionFrame(), FrameDirection.UPSTREAM)
        if button == self._termination:
            await self._flush()
            return
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        self.create_task(self._flush(), "dtmf-timeout")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _flush(self) -> None:
        self._cancel_timer()
        if not self._digits:
            return
        digits, self._digits = self._digits, ""
        logger.debug("%s: entry of %d keys", self, len(digits))
        timestamp = datetime.now(UTC).isoformat()
        await self.push_frame(TranscriptionFrame(f"{self._prefix}{digits}", "", timestamp))

    async def cleanup(self) -> None:
        self._cancel_timer()
        await super().cleanup()
