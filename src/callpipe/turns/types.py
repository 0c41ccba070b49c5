"""Small shared types of the user-turn strategies (Pipecat 1.14 module path)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ProcessFrameResult(Enum):
    """A strategy's answer to a frame: let the next strategy see it too, or stop there."""

    CONTINUE = "continue"
    STOP = "stop"


@dataclass
class UserTurnSpeculation:
    """An answer being prepared for a turn that is not confirmed yet; ``text`` is what it
    answers (the eager transcript, after any words of the turn already committed)."""

    text: str
