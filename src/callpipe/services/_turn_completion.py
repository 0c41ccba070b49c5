"""The LLM service's side of ``filter_incomplete_user_turns``: reading the turn marker.

An LLM service holds one :class:`TurnCompletionFilter` while the protocol is on (None while it
is off, so the token path costs one ``is None`` test). The filter sees the reply's text before
anything is pushed and holds it back until the marker shows up:

- ``●``: ``UserTurnInferenceCompletedFrame`` is broadcast, an ``LLMMarkerFrame`` (written by
  the assistant aggregator at the start of the reply's message) goes out, then the text after
  the marker, spoken as usual.
- ``◐`` / ``○``: an ``LLMMarkerFrame`` written as an assistant message of its own; nothing of
  the reply is pushed. A timer starts; when it runs out the nudge prompt is added to the
  context as a ``system`` message and the LLM runs again. The caller speaking, an interruption
  or any new completion cancels the timer. A ``●`` read while the caller is speaking again
  (VAD) is stale and handled as ``◐``.
- No marker in the whole reply: its text is pushed at the end anyway (with a warning; the
  system prompt probably lacks the instructions) and, since the bot then speaks, the turn
  counts as complete.

A tool call also completes the turn.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from callpipe.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMMarkerFrame,
    UserStartedSpeakingFrame,
    UserTurnInferenceCompletedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.turns.user_turn_completion_mixin import (
    IncompleteType,
    TurnMarker,
    UserTurnCompletionConfig,
)

if TYPE_CHECKING:
    from callpipe.processors.aggregators.llm_context import ChatContext
    from callpipe.services.llm_service import LLMService

logger = logging.getLogger(__name__)


class TurnCompletionFilter:
    """One LLM service's marker reading (see the module docstring)."""

    def __init__(
        self, service: LLMService, config: UserTurnCompletionConfig, base_instruction: Any
    ) -> None:
        self._service = service
        self.config = config
        self.base_instruction = base_instruction
        """The system instruction without the turn-completion instructions."""
        self.context: ChatContext | None = None
        """The context of the last completion: the nudge is added to it."""
        self._buffer = ""
        self._marker: TurnMarker | None = None
        self._strip_space = False
        self._completed = False
        self._user_speaking = False
        self._timer: asyncio.Task[None] | None = None

    def compose_instruction(self) -> str:
        """The base instruction with the turn-completion instructions appended."""
        base = self.base_instruction
        parts = [base] if isinstance(base, str) and base else []
        parts.append(self.config.completion_instructions)
        return "\n\n".join(parts)

    # ------------------------------------------------------------------ the reply

    async def text(self, text: str) -> None:
        """A piece of the reply, in place of pushing it as an ``LLMTextFrame``."""
        if self._marker is TurnMarker.COMPLETE:
            if self._strip_space:
                text = text.lstrip()
                if not text:
                    return
                self._strip_space = False
            await self._service.push_frame(self._service.llm_text_frame(text))
            return
        if self._marker is TurnMarker.INCOMPLETE:
            return  # the model should have stopped; whatever it adds is not spoken
        self._buffer += text
        complete, short, long = self.config.markers
        if short in self._buffer:
            await self._incomplete(short, IncompleteType.SHORT)
        elif long in self._buffer:
            await self._incomplete(long, IncompleteType.LONG)
        elif complete in self._buffer:
            if self._user_speaking:
                logger.debug("%s: %s while the caller speaks: taken as %s", self, complete, short)
                await self._incomplete(short, IncompleteType.SHORT)
                return
            rest = self._buffer[self._buffer.index(complete) + len(complete) :]
            self._buffer = ""
            self._marker = TurnMarker.COMPLETE
            await self._complete()
            await self._service.push_frame(
                LLMMarkerFrame(marker=complete, append_to_context_immediately=False)
            )
            self._strip_space = True
            if rest:
                await self.text(rest)

    async def _incomplete(self, marker: str, kind: IncompleteType) -> None:
        logger.debug("%s: incomplete turn (%s); nothing spoken", self._service, marker)
        self._buffer = ""
        self._marker = TurnMarker.INCOMPLETE
        await self._service.push_frame(LLMMarkerFrame(marker=marker))
        await self._cancel_timer()
        wait = (
            self.config.incomplete_short_timeout
            if kind is IncompleteType.SHORT
            else self.config.incomplete_long_timeout
        )
        self._timer = self._service.create_task(self._nudge_after(kind, wait), "turn-nudge")

    async def _complete(self) -> None:
        """Broadcast the verdict, once per reply."""
        if not self._completed:
            self._completed = True
            await self._service.broadcast_frame(UserTurnInferenceCompletedFrame)

    async def tool_calls_started(self) -> None:
        await self._complete()

    async def response_started(self) -> None:
        """A completion begins: a nudge still waiting is no longer needed."""
        await self._cancel_timer()
        self._reset()

    async def response_ended(self) -> None:
        """A completion ended (not cancelled): push a reply that never had a marker."""
        if self._marker is None and self._buffer.strip():
            logger.warning(
                "%s: filter_incomplete_user_turns is on but the reply had no turn marker; "
                "speaking it anyway (is the system instruction replaced?)",
                self._service,
            )
            await self._complete()
            await self._service.push_frame(self._service.llm_text_frame(self._buffer))
        self._reset()

    def _reset(self) -> None:
        self._buffer = ""
        self._marker = None
        self._strip_space = False
        self._completed = False

    # ------------------------------------------------------------------ the nudge

    async def observe(self, frame: Frame) -> None:
        """A frame reaching the service: the caller speaking cancels a waiting nudge."""
        if isinstance(frame, InterruptionFrame | UserStartedSpeakingFrame):
            await self._cancel_timer()
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._user_speaking = True
            await self._cancel_timer()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._user_speaking = False

    async def _nudge_after(self, kind: IncompleteType, wait: float) -> None:
        await asyncio.sleep(wait)
        self._timer = None
        context = self.context
        if context is None:
            return
        prompt = (
            self.config.short_prompt if kind is IncompleteType.SHORT else self.config.long_prompt
        )
        logger.debug("%s: no more words after %.1fs; nudging", self._service, wait)
        context.add_message({"role": "system", "content": prompt})
        await self._service.queue_frame(LLMContextFrame(context=context))

    async def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            await self._service.cancel_task(timer)

    async def close(self) -> None:
        await self._cancel_timer()
