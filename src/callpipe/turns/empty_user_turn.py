"""What the user aggregator does with a caller turn that ends without a transcript.

VAD can start a turn on a cough, a door or words the STT did not catch; such a turn ends with
nothing to write to the context, so on its own the LLM does not run. That is harmless when the
bot was waiting for the caller, but when the turn cut the bot off (it was thinking, speaking or
running a function call, or had not yet finished its first reply) the bot would fall silent
mid-answer. :class:`EmptyUserTurnConfig` lets the aggregator add a system message and run the
LLM once in that case, so the bot asks the caller to say it again.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_EMPTY_USER_TURN_INTERRUPTED_PROMPT = (
    "The caller made a sound while you were answering, but no words could be made out. Your "
    "answer stopped at that point; the conversation holds only what the caller heard of it, "
    "possibly nothing. In one short sentence, ask the caller to say that again, and repeat "
    "any question of yours they may not have heard."
)
"""The message added for an empty turn that interrupted the bot (a system-level instruction)."""


@dataclass
class EmptyUserTurnConfig:
    """How to answer a user turn that ended with no transcript.

    Parameters:
        interrupted_prompt: Instruction added when the turn interrupted the bot; ``None``
            leaves such turns unanswered.
        idle_prompt: Instruction added when the bot was waiting for the caller; ``None`` (the
            default) leaves such turns unanswered (it may have been noise).
        max_consecutive_recoveries: How many empty turns in a row get an answer; the count
            starts again after a turn with a transcript.
    """

    interrupted_prompt: str | None = DEFAULT_EMPTY_USER_TURN_INTERRUPTED_PROMPT
    idle_prompt: str | None = None
    max_consecutive_recoveries: int = 1
