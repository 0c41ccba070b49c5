"""Chat Completions messages and tools → an OpenAI Responses API request.

The context keeps OpenAI Chat Completions messages (the common format). ``POST /v1/responses``
takes a list of ``input`` items instead; the rules applied here:

- ``system`` and ``developer`` messages → ``{"role": "developer", "content": ...}`` items;
- ``user`` and plain ``assistant`` messages keep their role; list content is converted part by
  part (``text`` → ``input_text``, ``image_url`` → ``input_image`` with its URL and
  ``detail``), anything else is passed on as it is;
- an ``assistant`` message's ``tool_calls`` → one ``function_call`` item each (``call_id``,
  ``name``, ``arguments``), after the message's text if it has any;
- ``tool`` results → ``function_call_output`` items (``call_id``, ``output``; a result that is
  not a string is sent as JSON);
- messages kept for this provider (``LLMSpecificMessage(llm="openai_responses", ...)``) are
  taken to be input items already and are sent unchanged.

The service's instruction goes in the request's ``instructions``; when there is no input yet
(the bot speaks first) it is sent as a developer item instead, since the API wants at least one.

Tools ``[{"type": "function", "function": {...}}]`` → ``[{"type": "function", "name",
"description", "parameters", "strict"}]``; a tool already in this shape is kept. A Chat
Completions ``tool_choice`` naming a function becomes ``{"type": "function", "name": ...}``.

Nothing here does I/O: plain dicts in, plain dicts out.
"""

from __future__ import annotations

import copy
import json
from typing import Any, NotRequired, Required, TypedDict

from callpipe.adapters.llm.base_llm_adapter import BaseLLMAdapter

LLM_ID = "openai_responses"
"""The ``llm`` name of context messages only the Responses API reads (sent as input items)."""


class OpenAIResponsesLLMInvocationParams(TypedDict, total=False):
    """What the adapter makes of a context: the ``input`` items, the ``tools`` (empty for none)
    and, when there is one, the ``instructions``."""

    input: Required[list[dict[str, Any]]]
    tools: Required[list[dict[str, Any]]]
    instructions: NotRequired[str]


def _content(content: Any) -> Any:
    """A message's ``content`` for an input item: a string as it is, parts converted."""
    if not isinstance(content, list):
        return "" if content is None else content
    parts: list[Any] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            parts.append(
                {
                    "type": "input_image",
                    "image_url": str(image.get("url") or ""),
                    "detail": image.get("detail") or "auto",
                }
            )
        else:
            parts.append(copy.deepcopy(part))
    return parts


def _output(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content)


def convert_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses ``input`` items for Chat Completions ``messages`` (module docstring)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role is None:
            if message.get("type"):
                items.append(copy.deepcopy(message))  # already an input item
            continue
        if role in ("system", "developer"):
            items.append({"role": "developer", "content": _content(message.get("content"))})
        elif role == "user":
            items.append({"role": "user", "content": _content(message.get("content"))})
        elif role == "assistant":
            content = message.get("content")
            calls = message.get("tool_calls") or []
            if content or not calls:
                items.append({"role": "assistant", "content": _content(content)})
            for call in calls:
                function = call.get("function") or {}
                items.append(
                    {
                        "type": "function_call",
                        "call_id": str(call.get("id") or ""),
                        "name": str(function.get("name") or ""),
                        "arguments": str(function.get("arguments") or "{}"),
                    }
                )
        elif role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": str(message.get("tool_call_id") or ""),
                    "output": _output(message.get("content")),
                }
            )
    return items


def convert_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Chat Completions function tools as Responses function tools."""
    converted: list[dict[str, Any]] = []
    for tool in tools or ():
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, dict):
            converted.append(copy.deepcopy(tool))  # a Responses-shaped or built-in tool
            continue
        entry: dict[str, Any] = {
            "type": "function",
            "name": function.get("name", ""),
            "parameters": function.get("parameters") or {"type": "object", "properties": {}},
            "strict": function.get("strict"),
        }
        if function.get("description"):
            entry["description"] = function["description"]
        converted.append(entry)
    return converted


def convert_tool_choice(choice: Any) -> Any:
    """A Chat Completions ``tool_choice`` in the Responses shape (None stays None)."""
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "function", "name": choice["function"].get("name", "")}
    return choice


def invocation_params(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    system_instruction: str | None,
) -> OpenAIResponsesLLMInvocationParams:
    """``input``, ``tools`` and ``instructions`` for one request (module docstring)."""
    items = convert_messages(messages)
    params: OpenAIResponsesLLMInvocationParams = {"input": items, "tools": convert_tools(tools)}
    if system_instruction:
        if items:
            params["instructions"] = system_instruction
        else:
            params["input"] = [{"role": "developer", "content": system_instruction}]
    return params


class OpenAIResponsesLLMAdapter(BaseLLMAdapter[Any]):
    """The conversion above as an object, at Pipecat's adapter path.

    ``id_for_llm_specific_messages`` names the messages only the Responses API reads.
    """

    @property
    def id_for_llm_specific_messages(self) -> str:
        return LLM_ID

    def get_invocation_params(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        *,
        system_instruction: str | None = None,
    ) -> OpenAIResponsesLLMInvocationParams:
        return invocation_params(messages, tools, system_instruction)

    def to_provider_tools_format(self, tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        return convert_tools(tools)


__all__ = [
    "LLM_ID",
    "OpenAIResponsesLLMAdapter",
    "OpenAIResponsesLLMInvocationParams",
    "convert_messages",
    "convert_tool_choice",
    "convert_tools",
    "invocation_params",
]
