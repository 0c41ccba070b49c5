"""Turn-completion markers: the LLM says whether the caller had finished (1.14 module path).

With ``FilterIncompleteUserTurnStrategies`` the LLM is told to open every reply with one marker:

- ``●`` the caller finished: the words after the marker are the answer and are spoken;
- ``◐`` the caller broke off mid-sentence and will likely go on soon: nothing is spoken;
- ``○`` the caller needs time (thinking, "hold on"): nothing is spoken.

After ``◐`` / ``○`` the LLM service waits ``incomplete_short_timeout`` /
``incomplete_long_timeout`` seconds; if the caller has not spoken again by then it runs the LLM
once more with a nudge prompt, so the bot can invite the caller to go on.

:class:`UserTurnCompletionConfig` holds the markers, timeouts and texts; the markers are the
single source of the ``●◐○`` characters the context aggregators strip from reported text.
Pipecat's ``UserTurnCompletionLLMServiceMixin`` has no counterpart here: every callpipe LLM
service reads the markers itself (see :mod:`callpipe.services.llm_service`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

USER_TURN_COMPLETE_MARKER = "●"
"""The caller's turn is complete; the answer follows."""
USER_TURN_INCOMPLETE_SHORT_MARKER = "◐"
"""The caller was cut off mid-thought and will probably continue in a moment."""
USER_TURN_INCOMPLETE_LONG_MARKER = "○"
"""The caller asked for time or is still thinking."""


class TurnMarker(Enum):
    """The verdict read from the start of a reply."""

    COMPLETE = "complete"
    INCOMPLETE = "incomplete"


class IncompleteType(Enum):
    """Which wait applies after an incomplete verdict."""

    SHORT = "short"
    LONG = "long"


def _instructions(complete: str, short: str, long: str) -> str:
    return f"""
Every reply you write must begin with exactly one turn marker, as its first character. The \
caller's words come from speech recognition and may arrive before the caller has finished.

{complete} The caller finished their turn. Write {complete}, one space, then your reply.
{short} The caller stopped in the middle of a thought and will go on shortly (the words end on \
"and", "because", "to", an unfinished number or list). Write only {short}.
{long} The caller asked you to wait or needs time to think ("hold on", "let me think", "hmm"). \
Write only {long}.

A short answer to your question ("yes", "Tuesday", "two") is complete. A question, a correction \
or a request to repeat is complete. When your last reply was {short} or {long}, read the caller's \
new words together with the earlier ones as one turn. If the right response is a tool call, make \
it. Never write anything after {short} or {long}; you will be asked again later.

Examples: "i want to book a table for" -> {short}. "give me a second" -> {long}. \
"what time do you open" -> {complete} We open at nine."""


def _short_prompt(complete: str, short: str, long: str) -> str:
    return (
        "The caller paused mid-thought a few seconds ago and has not gone on. In one short, "
        "friendly sentence that fits the conversation, invite them to continue. Begin with "
        f"{complete} and a space; do not answer with {short} or {long}."
    )


def _long_prompt(complete: str, short: str, long: str) -> str:
    return (
        "The caller has been silent for a while. In one short, warm sentence, check in: let "
        "them know there is no hurry and you are ready when they are. Begin with "
        f"{complete} and a space; do not answer with {short} or {long}."
    )


@dataclass
class UserTurnCompletionConfig:
    """How the LLM marks turns and what happens after an incomplete one.

    Parameters:
        instructions: Text added to the system instruction (None: callpipe's, written for the
            configured markers).
        complete_marker / incomplete_short_marker / incomplete_long_marker: The three markers.
            Prefer characters that are one token for the model: the complete marker comes
            before every spoken word.
        incomplete_short_timeout: Seconds after ``◐`` before the LLM is asked to nudge.
        incomplete_long_timeout: Seconds after ``○`` before the LLM is asked to check in.
        incomplete_short_prompt / incomplete_long_prompt: The nudge prompts (None: callpipe's).
    """

    instructions: str | None = None
    complete_marker: str = USER_TURN_COMPLETE_MARKER
    incomplete_short_marker: str = USER_TURN_INCOMPLETE_SHORT_MARKER
    incomplete_long_marker: str = USER_TURN_INCOMPLETE_LONG_MARKER
    incomplete_short_timeout: float = 5.0
    incomplete_long_timeout: float = 10.0
    incomplete_short_prompt: str | None = None
    incomplete_long_prompt: str | None = None

    @property
    def markers(self) -> tuple[str, str, str]:
        """``(complete, short, long)``."""
        return (self.complete_marker, self.incomplete_short_marker, self.incomplete_long_marker)

    @property
    def completion_instructions(self) -> str:
        return self.instructions or _instructions(*self.markers)

    @property
    def short_prompt(self) -> str:
        return self.incomplete_short_prompt or _short_prompt(*self.markers)

    @property
    def long_prompt(self) -> str:
        return self.incomplete_long_prompt or _long_prompt(*self.markers)


USER_TURN_COMPLETION_INSTRUCTIONS = UserTurnCompletionConfig().completion_instructions
"""The default instructions, for bots that build their own system prompt."""
DEFAULT_INCOMPLETE_SHORT_PROMPT = UserTurnCompletionConfig().short_prompt
DEFAULT_INCOMPLETE_LONG_PROMPT = UserTurnCompletionConfig().long_prompt
