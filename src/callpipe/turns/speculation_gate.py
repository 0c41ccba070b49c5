"""SpeculationGate: keeps a reply to an unconfirmed turn out of the pipeline until it is confirmed.

With :class:`~callpipe.turns.user_turn_strategies.EagerUserTurnStrategies` the user aggregator
runs the LLM as soon as the STT predicts the end of the turn (``LLMContextFrame`` with
``speculation=True``). The LLM service owns one gate (created on the first such run, so a bot
without eager turns never pays for it) and passes every frame it pushes through
:meth:`SpeculationGate.process`, which returns what may go on now:

- a reply of a speculative run is held from its ``LLMFullResponseStartFrame`` on;
- ``UserStoppedSpeakingFrame`` (the aggregator sends it only once the committed transcript
  matched) releases what is held, in order, right after itself;
- ``EagerEndOfTurnCancelFrame`` or ``InterruptionFrame`` drops it, and the rest of that reply
  still to come; uninterruptible frames among it are let through, in order;
- a new reply drops whatever a previous speculative one left held.

A run that starts after its turn already ended is not held. System frames are never held
(the verdicts are system frames), and neither is anything travelling upstream.
"""

from __future__ import annotations

import logging
from enum import Enum

from callpipe.frames.frames import (
    EagerEndOfTurnCancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    SystemFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.processors.frame_processor import FrameDirection

logger = logging.getLogger(__name__)

GatedFrame = tuple[Frame, FrameDirection]
"""A frame and the direction to push it in."""


class SpeculationState(Enum):
    """``OPEN``: frames go on; ``HOLDING``: a speculative reply is held; ``DROPPING``: the rest
    of a withdrawn reply is dropped as it comes."""

    OPEN = "open"
    HOLDING = "holding"
    DROPPING = "dropping"


class SpeculationGate:
    """Decides which frames of an LLM service's output go on, and when (see the module)."""

    def __init__(self, name: str = "SpeculationGate") -> None:
        self._name = name
        self._state = SpeculationState.OPEN
        self._speculating = False
        self._turn_ended = False
        self._held: list[GatedFrame] = []

    def __str__(self) -> str:
        return self._name

    @property
    def state(self) -> SpeculationState:
        return self._state

    @property
    def is_speculating(self) -> bool:
        """The run in progress answers a turn that is not confirmed yet."""
        return self._speculating

    def begin_speculation(self, speculation: bool) -> None:
        """A run starts; ``speculation``: it answers an eager end of turn. A turn that already
        ended (its ``UserStoppedSpeakingFrame`` went by) makes it an ordinary run."""
        self._speculating = speculation and not self._turn_ended

    def run_stopped(self) -> None:
        """The run was cancelled: no more of its reply will come, so stop dropping."""
        self._speculating = False
        if self._state is SpeculationState.DROPPING:
            self._state = SpeculationState.OPEN

    def process(self, frame: Frame, direction: FrameDirection) -> list[GatedFrame]:
        """The frames to push now, in order (empty while ``frame`` is held or dropped)."""
        if direction is not FrameDirection.DOWNSTREAM:
            return [(frame, direction)]
        out: list[GatedFrame] = []
        if isinstance(frame, SystemFrame):
            out.append((frame, direction))
            if isinstance(frame, EagerEndOfTurnCancelFrame | InterruptionFrame):
                out += self._drop(keep_dropping=True)
            elif isinstance(frame, UserStoppedSpeakingFrame):
                out += self._release()
            elif isinstance(frame, UserStartedSpeakingFrame):
                self._turn_ended = False
            return out
        if isinstance(frame, EndFrame):
            # The call ends before the turn was confirmed: the reply is never spoken.
            return [*self._drop(keep_dropping=False), (frame, direction)]
        if isinstance(frame, LLMFullResponseStartFrame):
            if self._state is not SpeculationState.OPEN:
                out += self._drop(keep_dropping=False)
            if self._speculating:
                self._state = SpeculationState.HOLDING
        if self._state is SpeculationState.HOLDING:
            self._held.append((frame, direction))
        elif self._state is SpeculationState.DROPPING:
            if not frame.interruptible:
                out.append((frame, direction))
            elif isinstance(frame, LLMFullResponseEndFrame):
                self._state = SpeculationState.OPEN
        else:
            out.append((frame, direction))
        return out

    def _release(self) -> list[GatedFrame]:
        self._turn_ended = True
        self._speculating = False
        if self._state is not SpeculationState.HOLDING:
            return []
        held, self._held = self._held, []
        self._state = SpeculationState.OPEN
        logger.debug("%s: turn confirmed; releasing %d held frames", self, len(held))
        return held

    def _drop(self, *, keep_dropping: bool) -> list[GatedFrame]:
        """Drop the held reply; return its uninterruptible frames (they go on regardless).
        ``keep_dropping``: the rest of the reply may still come and is dropped too."""
        self._speculating = False
        if self._state is not SpeculationState.HOLDING:
            self._state = SpeculationState.OPEN
            return []
        held, self._held = self._held, []
        complete = any(isinstance(f, LLMFullResponseEndFrame) for f, _ in held)
        self._state = (
            SpeculationState.DROPPING if keep_dropping and not complete else SpeculationState.OPEN
        )
        logger.debug("%s: speculative reply withdrawn; dropping %d frames", self, len(held))
        return [(f, d) for f, d in held if not f.interruptible]
