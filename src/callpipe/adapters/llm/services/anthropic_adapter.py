"""Chat Completions messages and tools → an Anthropic Messages API request.

The context keeps OpenAI-shaped messages (the common format); Claude's ``POST /v1/messages``
wants a top-level ``system`` and ``messages`` of ``user``/``assistant`` turns made of content
blocks. The rules applied here:

- leading ``system``/``developer`` messages become ``system``; later ones are sent as user text
  (Claude has one system prompt);
- ``assistant`` text → ``text`` blocks; its ``tool_calls`` → ``tool_use`` blocks whose ``input``
  is the parsed JSON arguments;
- ``tool`` results → ``tool_result`` blocks in a ``user`` turn;
- a kept thought (``{"type": "thought", "text", "signature"}``, stored by the assistant
  aggregator for this provider) → a ``thinking`` block in the assistant turn, which Claude needs
  back before a ``tool_use`` it made while thinking; thoughts without a signature are dropped;
- ``image_url`` data URLs → ``image`` blocks (base64), http(s) URLs → ``image`` URL sources;
- consecutive turns of the same role are merged into one, and empty text is left out.

Tools ``[{"type": "function", "function": {...}}]`` → ``[{"name", "description",
"input_schema"}]``; ``tool_choice`` → ``{"type": "auto" | "any" | "none" | "tool"}``. With prompt
caching on, the system prompt and the last two user turns carry ``cache_control`` breakpoints.

Nothing here does I/O: plain dicts in, plain dicts out.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

from callpipe.adapters.llm.base_llm_adapter import BaseLLMAdapter

AnthropicCacheTTL = Literal["5m", "1h"]
"""Lifetime of a prompt-cache entry: Anthropic's default five minutes, or one hour."""

LLM_ID = "anthropic"
"""The ``llm`` name of context messages only Claude understands (kept thinking blocks)."""

EMPTY_TEXT = "(empty)"


def _text_blocks(content: Any) -> list[dict[str, Any]]:
    """Content blocks for a Chat Completions ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for item in content or ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "text":
            if item.get("text"):
                blocks.append({"type": "text", "text": str(item["text"])})
        elif kind == "image_url":
            url = str((item.get("image_url") or {}).get("url", ""))
            if url.startswith("data:") and ";base64," in url:
                media_type, data = url[5:].split(";base64,", 1)
                source = {"type": "base64", "media_type": media_type, "data": data}
                blocks.append({"type": "image", "source": source})
            elif url.startswith(("http://", "https://")):
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
        elif kind in ("image", "document", "tool_use", "tool_result", "thinking"):
            # Already in Anthropic's shape (a message written for Claude directly).
            blocks.append(copy.deepcopy(item))
    return blocks


def _tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _tool_result_content(content: Any) -> Any:
    if isinstance(content, str):
        return content or EMPTY_TEXT
    blocks = _text_blocks(content)
    return blocks or EMPTY_TEXT


def convert_messages(
    messages: list[dict[str, Any]],
) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, messages)`` for Chat Completions ``messages`` (see the module docstring)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    leading = True

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role is None and message.get("type") == "thought":
            signature = message.get("signature")
            if isinstance(signature, str) and signature:
                thinking = str(message.get("text") or "")
                add(
                    "assistant",
                    [{"type": "thinking", "thinking": thinking, "signature": signature}],
                )
            continue
        if role in ("system", "developer") and leading:
            text = " ".join(b["text"] for b in _text_blocks(content) if b["type"] == "text")
            if text:
                system.append(text)
            continue
        leading = False
        if role in ("user", "system", "developer"):
            add("user", _text_blocks(content))
        elif role == "assistant":
            blocks = _text_blocks(content)
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": str(call.get("id") or ""),
                        "name": str(function.get("name") or ""),
                        "input": _tool_input(function.get("arguments")),
                    }
                )
            add("assistant", blocks)
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id") or ""),
                "content": _tool_result_content(content),
            }
            add("user", [result])
    for turn in out:
        if turn["role"] == "assistant":
            # Claude wants a turn's thinking before its text and tool_use blocks; a thought
            # may have reached the context after the message it belongs to.
            turn["content"].sort(key=lambda block: block.get("type") != "thinking")
    return ("\n\n".join(system) or None), out


def ensure_last_message_is_user(messages: list[dict[str, Any]]) -> None:
    """Append a minimal user turn when ``messages`` ends with the assistant's (models without
    assistant prefill refuse such a request)."""
    if messages and messages[-1]["role"] == "assistant":
        messages.append({"role": "user", "content": [{"type": "text", "text": "."}]})


def cache_control(ttl: AnthropicCacheTTL | None = None) -> dict[str, Any]:
    marker: dict[str, Any] = {"type": "ephemeral"}
    if ttl is not None:
        marker["ttl"] = ttl
    return marker


def with_cache_breakpoints(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of ``messages`` with ``cache_control`` on the last block of the last two user
    turns: the newest writes the cache, the one before reads what the previous turn wrote."""
    marked = copy.deepcopy(messages)
    users = [i for i, m in enumerate(marked) if m["role"] == "user"][-2:]
    for index in users:
        content = marked[index]["content"]
        if content:
            content[-1]["cache_control"] = cache_control()
    return marked


def system_param(
    system: str, *, caching: bool, ttl: AnthropicCacheTTL | None = None
) -> str | list[dict[str, Any]]:
    """The ``system`` field: the text, or one text block with a cache breakpoint."""
    if not caching:
        return system
    return [{"type": "text", "text": system, "cache_control": cache_control(ttl)}]


def convert_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Chat Completions function tools as Anthropic tool definitions."""
    converted: list[dict[str, Any]] = []
    for tool in tools or ():
        if tool.get("type", "function") != "function":
            continue
        function = tool.get("function", tool)
        if not isinstance(function, dict) or not function.get("name"):
            continue
        schema = function.get("parameters")
        if not isinstance(schema, dict) or not schema:
            schema = {"type": "object", "properties": {}}
        definition: dict[str, Any] = {"name": function["name"], "input_schema": schema}
        if function.get("description"):
            definition["description"] = function["description"]
        converted.append(definition)
    return converted


def convert_tool_choice(choice: Any) -> dict[str, Any] | None:
    """An OpenAI ``tool_choice`` as Anthropic's (None: leave Claude's default, ``auto``)."""
    if isinstance(choice, dict):
        if choice.get("type") in ("auto", "any", "none", "tool"):
            return dict(choice)  # already Anthropic's
        name = (choice.get("function") or {}).get("name")
        return {"type": "tool", "name": str(name)} if name else {"type": "any"}
    kind = {"auto": "auto", "none": "none", "required": "any"}.get(str(choice))
    return {"type": kind} if kind else None


class AnthropicLLMAdapter(BaseLLMAdapter[Any]):
    """The conversion above as an object, at Pipecat's adapter path.

    ``id_for_llm_specific_messages`` names the messages only Claude reads (``"anthropic"``).
    """

    @property
    def id_for_llm_specific_messages(self) -> str:
        return LLM_ID

    def convert_messages(
        self, messages: list[dict[str, Any]]
    ) -> tuple[str | None, list[dict[str, Any]]]:
        return convert_messages(messages)

    def to_provider_tools_format(self, tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        return convert_tools(tools)


__all__ = [
    "LLM_ID",
    "AnthropicCacheTTL",
    "AnthropicLLMAdapter",
    "cache_control",
    "convert_messages",
    "convert_tool_choice",
    "convert_tools",
    "ensure_last_message_is_user",
    "system_param",
    "with_cache_breakpoints",
]
