"""Chat Completions messages and tools → a Gemini ``generateContent`` request body.

The conversation is kept as OpenAI-style messages (the common context format); Gemini wants
``contents`` of ``user``/``model`` turns made of parts:

- leading ``system`` messages → ``systemInstruction``; a later ``system`` message becomes a user
  turn (Gemini has one system instruction);
- ``assistant`` text → a ``model`` text part; its ``tool_calls`` → ``functionCall`` parts (with the
  ``thoughtSignature`` Gemini gave the call, which thinking models need back);
- ``tool`` results → ``functionResponse`` parts of a ``user`` turn (the response must be a JSON
  object: anything else is wrapped as ``{"result": ...}``);
- consecutive turns of the same role are merged.

Tools ``[{"type": "function", "function": {...}}]`` → ``[{"functionDeclarations": [...]}]``, with
the JSON-Schema keys Gemini's schema subset refuses (``additionalProperties``, ``$schema``)
removed; ``tool_choice`` → ``toolConfig.functionCallingConfig``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

UNSUPPORTED_SCHEMA_KEYS = frozenset({"additionalProperties", "$schema", "strict", "$id", "$defs"})

GENERATED_ID_PREFIX = "gemini_call_"
"""Ids we made up for calls Gemini gave no id; they are not sent back."""


def clean_schema(schema: Any) -> Any:
    """``schema`` without the JSON-Schema keys Gemini's ``parameters`` refuses."""
    if isinstance(schema, dict):
        return {k: clean_schema(v) for k, v in schema.items() if k not in UNSUPPORTED_SCHEMA_KEYS}
    if isinstance(schema, list):
        return [clean_schema(item) for item in schema]
    return schema


def convert_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    declarations: list[dict[str, Any]] = []
    for tool in tools or ():
        function = (
            tool.get("function", tool) if tool.get("type", "function") == "function" else None
        )
        if not isinstance(function, dict) or not function.get("name"):
            continue
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if isinstance(parameters, dict) and parameters.get("properties"):
            declaration["parameters"] = clean_schema(parameters)
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else None


def convert_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        config: dict[str, Any] = {"mode": "ANY"}
        if name:
            config["allowedFunctionNames"] = [name]
        return {"functionCallingConfig": config}
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(str(choice))
    return {"functionCallingConfig": {"mode": mode}} if mode else None


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for item in content or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "text" and item.get("text"):
            parts.append({"text": item["text"]})
        elif item.get("type") == "image_url":
            url = str((item.get("image_url") or {}).get("url", ""))
            if url.startswith("data:") and ";base64," in url:
                mime, data = url[5:].split(";base64,", 1)
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
        elif item.get("type") == "input_audio":
            audio = item.get("input_audio") or {}
            if audio.get("data"):
                fmt = audio.get("format", "wav")
                parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": audio["data"]}})
    return parts


def response_object(content: Any, wrap_key: str = "result") -> dict[str, Any]:
    """A function's result as a ``functionResponse``'s ``response``, which must be a JSON object:
    a JSON string is parsed, and anything but an object is wrapped as ``{wrap_key: ...}``."""
    value = content
    if isinstance(content, str):
        try:
            value = json.loads(content)
        except ValueError:
            value = content
    return value if isinstance(value, dict) else {wrap_key: value}


def usage_counts(usage: Mapping[str, Any], answer_key: str) -> tuple[int, int, int | None]:
    """``(prompt, completion, reasoning)`` tokens of a ``usageMetadata`` object whose answer
    tokens are counted under ``answer_key``. Gemini counts tool results fed back
    (``toolUsePromptTokenCount``) apart from the prompt and thinking (``thoughtsTokenCount``)
    apart from the answer; both are folded in, so prompt and completion mean what they mean for
    other providers. ``reasoning`` is None when thinking is not reported."""
    reasoning = int(usage.get("thoughtsTokenCount") or 0)
    prompt = int(usage.get("promptTokenCount") or 0) + int(
        usage.get("toolUsePromptTokenCount") or 0
    )
    completion = int(usage.get(answer_key) or 0) + reasoning
    return prompt, completion, reasoning if "thoughtsTokenCount" in usage else None


def convert_messages(
    messages: list[dict[str, Any]], signatures: dict[str, str] | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """``(systemInstruction, contents)`` for ``messages`` (see the module docstring)."""
    signatures = signatures or {}
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    leading = True

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "system" and leading:
            text = " ".join(p["text"] for p in _text_parts(content))
            if text:
                system.append(text)
            continue
        leading = False
        if role in ("user", "system", "developer"):  # (developer: e.g. an async tool's result)
            add("user", _text_parts(content))
        elif role == "assistant":
            parts = _text_parts(content)
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                call_id = str(call.get("id") or "")
                names[call_id] = function.get("name", "")
                try:
                    args = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    args = {}
                function_call: dict[str, Any] = {
                    "name": function.get("name", ""),
                    "args": args if isinstance(args, dict) else {},
                }
                if call_id and not call_id.startswith(GENERATED_ID_PREFIX):
                    function_call["id"] = call_id
                part: dict[str, Any] = {"functionCall": function_call}
                if call_id in signatures:
                    part["thoughtSignature"] = signatures[call_id]
                parts.append(part)
            add("model", parts)
        elif role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            response: dict[str, Any] = {
                "name": names.get(call_id, ""),
                "response": response_object(content),
            }
            if call_id and not call_id.startswith(GENERATED_ID_PREFIX):
                response["id"] = call_id
            add("user", [{"functionResponse": response}])
    instruction = {"parts": [{"text": "\n\n".join(system)}]} if system else None
    return instruction, contents
