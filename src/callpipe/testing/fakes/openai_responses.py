"""The Responses API side of :class:`~callpipe.testing.fakes.openai.FakeOpenAIServer`.

``POST /v1/responses`` with ``"stream": true`` answers with the server-sent events OpenAI
documents (https://platform.openai.com/docs/api-reference/responses-streaming), each an
``event: <type>`` line and a ``data: {json}`` line whose ``type`` repeats it, numbered by
``sequence_number``:

``response.created``, ``response.in_progress``; for a reply with ``reasoning``, a ``reasoning``
output item whose summary streams as ``response.reasoning_summary_text.delta``\\ s (with an
``encrypted_content`` when the request's ``include`` asks for ``reasoning.encrypted_content``);
for its ``text``, a ``message`` item (``response.content_part.added``, word-by-word
``response.output_text.delta``\\ s, ``.done``, ``response.content_part.done``); for each tool
call, a ``function_call`` item whose arguments stream in two
``response.function_call_arguments.delta``\\ s then ``.done``; every item opened by
``response.output_item.added`` and closed by ``response.output_item.done``. The stream ends
with ``response.completed`` (the response with all its output and its ``usage``), or, for a
reply with ``failed_code``, ``response.failed`` carrying that error code (with
``incomplete_reason``, ``response.incomplete`` carrying that reason).

The same :class:`~callpipe.testing.fakes.openai.ChatReply` script drives both APIs.
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callpipe.testing.fakes.openai import ChatReply


def last_user_text(body: dict[str, Any]) -> str | None:
    """The text of the request's last user input item (None when there is none)."""
    users = [i for i in body.get("input") or [] if isinstance(i, dict) and i.get("role") == "user"]
    if not users:
        return None
    content = users[-1].get("content", "")
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return str(content)


_numbers = itertools.count()
"""Numbers the responses of all fakes, so every response and item id is unique."""


def _words(text: str) -> list[str]:
    words = text.split(" ") if text else []
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def _response(
    body: dict[str, Any], number: int, created: int, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": f"resp_fake_{number}",
        "object": "response",
        "created_at": created,
        "status": status,
        "model": body.get("model", ""),
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "instructions": body.get("instructions"),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"),
        "error": None,
        "incomplete_details": None,
        "metadata": {},
        "usage": None,
    }


def _usage(reply: ChatReply, output_words: int) -> dict[str, Any]:
    cached = reply.cached_tokens or 0
    reasoning = reply.reasoning_tokens or 0
    prompt = 10 + cached
    completion = output_words + reasoning
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def response_events(
    reply: ChatReply, call_ids: list[str], body: dict[str, Any], created: int
) -> list[dict[str, Any]]:
    """Every event of the streamed response to ``body`` (module docstring), in order."""
    events: list[dict[str, Any]] = []
    output: list[dict[str, Any]] = []
    number = next(_numbers)

    def add(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    add("response.created", response=_response(body, number, created, "in_progress", []))
    add("response.in_progress", response=_response(body, number, created, "in_progress", []))

    if reply.reasoning:
        index, item_id = len(output), f"rs_fake_{number}"
        add(
            "response.output_item.added",
            output_index=index,
            item={"id": item_id, "type": "reasoning", "summary": []},
        )
        where = {"item_id": item_id, "output_index": index, "summary_index": 0}
        for word in _words(reply.reasoning):
            add("response.reasoning_summary_text.delta", delta=word, **where)
        add("response.reasoning_summary_text.done", text=reply.reasoning, **where)
        done = {
            "id": item_id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": reply.reasoning}],
        }
        if "reasoning.encrypted_content" in (body.get("include") or []):
            done["encrypted_content"] = f"encrypted:{reply.reasoning}"
        add("response.output_item.done", output_index=index, item=done)
        output.append(done)

    words = _words(reply.text)
    if words:
        index, item_id = len(output), f"msg_fake_{number}"
        message = {"id": item_id, "type": "message", "role": "assistant"}
        add(
            "response.output_item.added",
            output_index=index,
            item={**message, "status": "in_progress", "content": []},
        )
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        empty = {"type": "output_text", "text": "", "annotations": []}
        add("response.content_part.added", part=empty, **where)
        for word in words:
            add("response.output_text.delta", delta=word, logprobs=[], **where)
        add("response.output_text.done", text=reply.text, logprobs=[], **where)
        part = {"type": "output_text", "text": reply.text, "annotations": []}
        add("response.content_part.done", part=part, **where)
        done = {**message, "status": "completed", "content": [part]}
        add("response.output_item.done", output_index=index, item=done)
        output.append(done)

    for n, (call, call_id) in enumerate(zip(reply.tool_calls, call_ids, strict=True)):
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        index, item_id = len(output), f"fc_fake_{number}_{n}"
        head = {"id": item_id, "type": "function_call", "call_id": call_id, "name": call["name"]}
        add(
            "response.output_item.added",
            output_index=index,
            item={**head, "arguments": "", "status": "in_progress"},
        )
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            add(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=index,
                delta=piece,
            )
        add(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=index,
            arguments=arguments,
        )
        done = {**head, "arguments": arguments, "status": "completed"}
        add("response.output_item.done", output_index=index, item=done)
        output.append(done)

    usage = _usage(reply, len(words) + len(reply.tool_calls))
    if reply.failed_code is not None:
        failed = _response(body, number, created, "failed", output)
        failed["error"] = {"code": reply.failed_code, "message": reply.error_message}
        failed["usage"] = usage
        add("response.failed", response=failed)
    elif reply.incomplete_reason is not None:
        cut = _response(body, number, created, "incomplete", output)
        cut["incomplete_details"] = {"reason": reply.incomplete_reason}
        cut["usage"] = usage
        add("response.incomplete", response=cut)
    else:
        completed = _response(body, number, created, "completed", output)
        completed["usage"] = usage
        add("response.completed", response=completed)
    return events
