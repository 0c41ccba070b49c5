"""The cancel tools of asynchronous functions (Pipecat 1.14's built-in async tool cancellation).

A function registered with ``cancellable_by_llm=True`` (and ``cancel_on_interruption=False``)
is advertised with a companion tool, ``cancel_<name>``, built here, and
:data:`ASYNC_TOOL_CANCELLATION_INSTRUCTIONS` is composed into the system instruction, so the
model can stop work whose result nobody wants any more. A function that did not opt in has no
cancel tool. The cancel tool takes no arguments to stop the one running call; ``tool_call_id``
chooses between several running calls of the same function (each call's id is in the context,
on the message that reported it running).
"""

from __future__ import annotations

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema

__all__ = [
    "ASYNC_TOOL_CANCELLATION_INSTRUCTIONS",
    "CANCEL_TOOL_PREFIX",
    "build_cancel_tool_schema",
    "cancel_tool_name",
]

ASYNC_TOOL_CANCELLATION_INSTRUCTIONS = """STOPPING BACKGROUND TOOLS:
Some of your tools keep working in the background after you reply, and some of those can be \
stopped before they finish. Each one that can has a stop tool named after it with a cancel_ \
prefix: a running book_flight call is stopped with cancel_book_flight. A background tool \
without such a stop tool cannot be stopped and will finish by itself.

When the user no longer wants a result you are still waiting for, call the matching cancel \
tool. Only the call stops the work: telling the user you dropped it leaves it running, and its \
result will still arrive and contradict you. So when the same turn also asks for something \
else, call the cancel tool and answer, instead of only answering.

Called with no arguments, a cancel tool stops the single running call of its tool. When \
several calls of that tool are running, pass the tool_call_id of the one to stop. Each call's \
id is already in the conversation: it is on the tool message that reported that call running \
(the one with "status": "running"), next to the arguments the call was made with. Copy the id \
exactly as written; never make one up."""
"""Composed into the LLM service's system instruction while a cancel tool is advertised."""

CANCEL_TOOL_PREFIX = "cancel_"
"""A cancellable function ``name`` is stopped by the tool ``cancel_<name>``."""


def cancel_tool_name(function_name: str) -> str:
    """The cancel tool of ``function_name`` (``book_flight`` → ``cancel_book_flight``)."""
    return f"{CANCEL_TOOL_PREFIX}{function_name}"


def build_cancel_tool_schema(function_name: str) -> FunctionSchema:
    """The cancel tool advertised next to the cancellable function ``function_name``.

    No argument is required: the tool names the function, so stopping its one running call
    needs nothing more; ``tool_call_id`` picks one when several are running.
    """
    return FunctionSchema(
        name=cancel_tool_name(function_name),
        description=(
            f"Stop a {function_name} call that is still running when its result is no longer "
            "wanted: the user drops the request, replaces it with another, or says something "
            "that makes the pending result stale. With no arguments it stops the one running "
            f"call; tool_call_id is needed only to pick one when several {function_name} "
            "calls are running."
        ),
        properties={
            "tool_call_id": {
                "type": "string",
                "description": (
                    f"The {function_name} call to stop, only needed when several are running; "
                    "each call's id is on the conversation message that reported it running."
                ),
            },
        },
        required=[],
    )
