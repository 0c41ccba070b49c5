"""The context messages of an asynchronous function call (Pipecat 1.14's async-tool protocol).

A function registered with ``cancel_on_interruption=False`` does not hold the conversation
while it works (with an :class:`~callpipe.processors.aggregators.llm_context.LLMContext`; the
older ``OpenAILLMContext`` keeps callpipe's earlier behaviour). The LLM service writes these
messages into the context as the call goes on:

- ``started``: the ``tool`` message answering the call, written at once. It says the work is
  running, so the context is valid and the model can go on talking meanwhile.
- ``intermediate``: a ``developer`` message for each progress report the handler sends with
  ``result_callback(..., properties=FunctionCallResultProperties(is_final=False))``.
- ``final``: a ``developer`` message with the outcome once the call ends. A call that is
  cancelled (it ran past its timeout, or the model stopped it) ends the same way, with a
  cancellation notice for its result (:func:`build_cancelled_message`).

The ``final`` message exists for a result that arrives after the conversation moved on. When
nothing moved in between (no user or developer message after the ``started`` one), the result
simply replaces the ``started`` message's content, as a synchronous call's would, and no
``final`` message is written. A cancellation always gets its ``final`` message: the model has
to hear that the work did not finish.

Each payload is a JSON object ``{"type": "async_tool", "status": "running" | "finished",
"tool_call_id", "description"[, "result"]}``, held as the message's ``content`` string. The
builders here write it and :func:`parse_message` reads it back, so the shape lives in this one
module (the context summarizer recognises it too, to leave running calls alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from callpipe.processors.aggregators.llm_context import LLMStandardMessage

__all__ = [
    "ASYNC_TOOL_INSTRUCTIONS",
    "AsyncToolMessageKind",
    "AsyncToolMessagePayload",
    "build_cancelled_message",
    "build_final_result_message",
    "build_intermediate_result_message",
    "build_started_message",
    "parse_message",
]

AsyncToolMessageKind = Literal["started", "intermediate", "final"]

_PAYLOAD_TYPE = "async_tool"
_RUNNING: Literal["running"] = "running"
_FINISHED: Literal["finished"] = "finished"

# What each message tells the model. The started and progress texts name no message shape on
# purpose: a model told what to expect tends to produce it itself, by calling the tool again.
_STARTED_DESCRIPTION = (
    "The task is running in the background and its outcome is not known yet; it will be "
    "reported later in this conversation. Don't start it again, and don't guess or make up "
    "its outcome while you wait."
)
_INTERMEDIATE_DESCRIPTION = (
    "Progress report: the task has not finished and more reports may come before its "
    "outcome. Don't start it again, and don't present this as the outcome."
)
_FINAL_DESCRIPTION = (
    "The background task for this tool_call_id has finished and this is its outcome; nothing "
    "more will arrive for it. The user must hear this outcome even if the conversation has "
    "moved on to something else. If the user said something you haven't answered yet, answer "
    "that first and give this outcome at the end of the same reply; if everything the user "
    "said is already answered, give only the outcome, without repeating your previous reply. "
    "Say a short outcome directly; for a long or detailed one, say what came back and offer "
    "the details. Mention it once, not again in later replies."
)
# Says that the *call* stopped: a bare "cancelled" reads as news about whatever the tool was
# working on (an order, a booking), and a model would pass that on to the user.
_CANCELLED_RESULT = "CANCELLED: the call to this tool was stopped before it returned anything"
_CANCELLED_DESCRIPTION = (
    "The background task for this tool_call_id was stopped before it had an outcome, because "
    "it took too long or because it was asked to stop. Nothing more will arrive for this "
    "tool_call_id. If the user is waiting for it, tell them it did not finish rather than "
    "leaving the question open."
)

ASYNC_TOOL_INSTRUCTIONS = """TOOLS THAT FINISH LATER:
Some of your tools keep working after you have replied. What they return reaches you later, \
as a message in the conversation, on whichever turn is under way at that moment.

Once such an outcome has arrived you owe it to the user, whatever the conversation is about by \
then. If the user said something you have not answered yet, answer it first and put the \
outcome at the end of that same reply, never before your answer. If you have already answered \
everything the user said, give only the outcome, without repeating or rewording your earlier \
reply. Say a short outcome directly; for a long one, say what came back and offer the details. \
Mention it once and do not bring it up again in later replies."""
"""Composed into the LLM service's system instruction while an asynchronous function is
registered, so the rules are in force before any outcome arrives (the per-message descriptions
repeat them, but a message deep in the context weighs less than the user's latest request)."""


@dataclass(frozen=True)
class AsyncToolMessagePayload:
    """What an async-tool message says, as :func:`parse_message` reads it.

    ``result`` is the reported result as the LLM service writes it (JSON, a text result too,
    as Pipecat 1.14 does, or ``"COMPLETED"`` when the handler gave nothing); None for a
    ``started`` message.
    """

    kind: AsyncToolMessageKind
    tool_call_id: str
    status: Literal["running", "finished"]
    description: str
    result: str | None


def _message(payload: AsyncToolMessagePayload) -> LLMStandardMessage:
    """The context message carrying ``payload``: a ``tool`` message for ``started`` (it
    answers the call), a ``developer`` message otherwise."""
    body: dict[str, Any] = {
        "type": _PAYLOAD_TYPE,
        "status": payload.status,
        "tool_call_id": payload.tool_call_id,
        "description": payload.description,
    }
    if payload.result is not None:
        body["result"] = payload.result
    content = json.dumps(body, ensure_ascii=False)
    if payload.kind == "started":
        return {"role": "tool", "content": content, "tool_call_id": payload.tool_call_id}
    return {"role": "developer", "content": content}


def build_started_message(tool_call_id: str) -> LLMStandardMessage:
    """The ``tool`` message written when an asynchronous call starts: the work is running."""
    return _message(
        AsyncToolMessagePayload("started", tool_call_id, _RUNNING, _STARTED_DESCRIPTION, None)
    )


def build_intermediate_result_message(tool_call_id: str, result: str) -> LLMStandardMessage:
    """The ``developer`` message for one progress report (``result``: the report as JSON)."""
    return _message(
        AsyncToolMessagePayload(
            "intermediate", tool_call_id, _RUNNING, _INTERMEDIATE_DESCRIPTION, result
        )
    )


def build_final_result_message(tool_call_id: str, result: str) -> LLMStandardMessage:
    """The ``developer`` message with a call's outcome, when the conversation moved on while
    it ran (``result``: the outcome as JSON, ``"COMPLETED"`` when the handler gave none)."""
    return _message(
        AsyncToolMessagePayload("final", tool_call_id, _FINISHED, _FINAL_DESCRIPTION, result)
    )


def build_cancelled_message(tool_call_id: str) -> LLMStandardMessage:
    """The ``developer`` message ending a call that was cancelled (timed out, or stopped by
    the model) instead of finishing."""
    return _message(
        AsyncToolMessagePayload(
            "final", tool_call_id, _FINISHED, _CANCELLED_DESCRIPTION, _CANCELLED_RESULT
        )
    )


def parse_message(message: LLMStandardMessage) -> AsyncToolMessagePayload | None:
    """The payload of an async-tool message; None for any other message.

    Pass standard messages only (leave ``LLMSpecificMessage`` entries out). The kind follows
    from the payload: no result is ``started``, a running one with a result ``intermediate``,
    a finished one ``final``.
    """
    if message.get("role") not in ("tool", "developer"):
        return None
    content = message.get("content")
    if not isinstance(content, str) or not content.startswith("{"):
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("type") != _PAYLOAD_TYPE:
        return None
    tool_call_id = body.get("tool_call_id")
    status = body.get("status")
    if not isinstance(tool_call_id, str):
        return None
    if status == _RUNNING:
        running: Literal["running", "finished"] = _RUNNING
    elif status == _FINISHED:
        running = _FINISHED
    else:
        return None
    description = body.get("description")
    result = body.get("result")
    text = result if isinstance(result, str) else None
    kind: AsyncToolMessageKind
    if text is None:
        kind = "started"
    elif running == _FINISHED:
        kind = "final"
    else:
        kind = "intermediate"
    return AsyncToolMessagePayload(
        kind=kind,
        tool_call_id=tool_call_id,
        status=running,
        description=description if isinstance(description, str) else "",
        result=text,
    )
