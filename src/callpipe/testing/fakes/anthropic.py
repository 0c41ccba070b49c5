"""FakeAnthropicServer: Anthropic's Messages API (``api.anthropic.com``) on 127.0.0.1.

The documented contract (https://docs.anthropic.com/en/api/messages,
https://docs.anthropic.com/en/api/messages-streaming and the official ``anthropic`` SDK's types):

- ``POST /v1/messages`` with the key in ``x-api-key`` (or ``Authorization: Bearer``, as the
  current SDK sends it) and an ``anthropic-version``; with ``"stream": true``
  the answer is Server-Sent Events, each ``event: <type>`` + ``data: {json}``:
  ``message_start``, a ``ping``, then per content block ``content_block_start`` /
  ``content_block_delta`` (``text_delta``, ``input_json_delta``, ``thinking_delta``,
  ``signature_delta``) / ``content_block_stop``, then ``message_delta`` (``stop_reason``,
  cumulative ``usage``) and ``message_stop``. Without ``stream`` one ``Message`` object.
- A scripted ``thinking`` text is sent first as a ``thinking`` block (with a signature) only
  when the request turns thinking on (``thinking.type`` ``enabled`` or ``adaptive``), as Claude
  does; tool calls are ``tool_use`` blocks whose input streams as JSON pieces.
- ``GET /v1/models/{model_id}`` → a ``ModelInfo``.
- Errors are ``{"type": "error", "error": {"type", "message"}, "request_id"}``: a bad key gets
  401 ``authentication_error``; a scripted status gets its documented type (429
  ``rate_limit_error``, 529 ``overloaded_error``...). A scripted ``stream_error`` is sent as an
  ``error`` event in the middle of a 200 stream, as Anthropic does when it overloads mid-answer.
- Requests are checked as the API does: ``model``, ``max_tokens`` and non-empty ``messages``;
  roles ``user``/``assistant``; known content block types with no empty text; each
  ``tool_result`` answering a ``tool_use`` of the turn before; thinking blocks only with a
  signature this fake issued (``require_signatures``); with thinking on, the last assistant
  turn with ``tool_use`` must start with its thinking block.

Replies are scripted (:meth:`add_reply`); without a script it answers ``"You said: <last user
text>"``. Every request body is recorded in ``requests`` and its headers in ``headers``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from callpipe.testing.fakes._server import LocalASGIServer, ServedHTTPFake, fake_app, sse

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
)


@dataclass
class AnthropicReply:
    """One scripted answer: ``text`` streamed word by word and/or ``tool_calls``
    (``{"name", "input"}``, optionally ``"id"``); ``thinking`` comes first when the request
    turns thinking on. A non-200 ``status`` answers with that error; ``stream_error`` (an error
    type such as ``"overloaded_error"``) is sent as an ``error`` event after the first block.
    Usage: ``input_tokens``, ``cache_read_tokens``, ``cache_creation_tokens``; output tokens are
    one per streamed piece."""

    text: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    error_message: str = "fake error"
    stream_error: str | None = None
    input_tokens: int = 12
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    chunk_delay: float = 0.0


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


def _error(status: int, message: str) -> Response:
    body = error_body(ERROR_TYPES.get(status, "api_error"), message)
    return JSONResponse(body, status_code=status)


def request_problem(body: Any, signatures: set[str] | None) -> str | None:
    """Why the Messages API would refuse ``body`` (None: it would not)."""
    if not isinstance(body, dict):
        return "body: must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    tool_uses: set[str] = set()
    for n, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{n}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        if isinstance(content, str):
            if not content:
                return f"messages.{n}: text content blocks must be non-empty"
            blocks: list[Any] = []
        elif isinstance(content, list) and content:
            blocks = content
        else:
            return f"messages.{n}.content: must be a string or a non-empty list"
        answered: set[str] = set()
        for block in blocks:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind not in BLOCK_TYPES:
                return f"messages.{n}.content: unknown block type {kind!r}"
            if kind == "text" and not block.get("text"):
                return f"messages.{n}: text content blocks must be non-empty"
            if kind == "tool_use":
                if role != "assistant" or not block.get("id") or not block.get("name"):
                    return f"messages.{n}: tool_use needs an id and a name, in an assistant turn"
                if not isinstance(block.get("input"), dict):
                    return f"messages.{n}: tool_use.input must be an object"
                answered.add(str(block["id"]))
            if kind == "tool_result" and block.get("tool_use_id") not in tool_uses:
                return (
                    f"messages.{n}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message."
                )
            if kind == "thinking" and signatures is not None:
                if block.get("signature") not in signatures:
                    return f"messages.{n}: Invalid `signature` in `thinking` block"
        tool_uses = answered
    thinking = body.get("thinking") or {}
    if thinking.get("type") in ("enabled", "adaptive"):
        problem = _thinking_problem(messages)
        if problem is not None:
            return problem
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return "system: must be a string or a list of text blocks"
    for tool in body.get("tools") or ():
        if not tool.get("name") or (tool.get("input_schema") or {}).get("type") != "object":
            return "tools: each tool needs a name and an input_schema of type object"
    return None


def _thinking_problem(messages: list[dict[str, Any]]) -> str | None:
    """With thinking on, the assistant turn whose tool calls are being answered (the last one)
    must start with the thinking block it was made with, as the API requires."""
    for n in range(len(messages) - 1, -1, -1):
        message = messages[n]
        if message["role"] != "assistant" or isinstance(message["content"], str):
            continue
        kinds = [block.get("type") for block in message["content"]]
        if "tool_use" in kinds and kinds[0] not in ("thinking", "redacted_thinking"):
            return (
                f"messages.{n}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                f"but found `{kinds[0]}`. When `thinking` is enabled, a final `assistant` "
                "message must start with a thinking block."
            )
        return None
    return None


class FakeAnthropicServer(ServedHTTPFake):
    """See the module docstring. ``async with FakeAnthropicServer() as fake: fake.base_url``."""

    def __init__(
        self, *, api_key: str | None = "test-key", require_signatures: bool = True
    ) -> None:
        self.api_key = api_key
        self.require_signatures = require_signatures
        self.replies: deque[AnthropicReply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.signatures: set[str] = set()
        self.completed_streams = 0
        self._server = LocalASGIServer(
            fake_app(
                [
                    Route("/v1/messages", self._messages, methods=["POST"]),
                    Route("/v1/models/{model_id:path}", self._model, methods=["GET"]),
                ]
            )
        )

    def add_reply(self, text: str = "", **kwargs: Any) -> AnthropicReply:
        reply = AnthropicReply(text=text, **kwargs)
        self.replies.append(reply)
        return reply

    def _denied(self, request: Request) -> Response | None:
        if self.api_key is not None:
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if self.api_key not in (request.headers.get("x-api-key"), bearer):
                return _error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "anthropic-version: header is required")
        return None

    async def _model(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        model_id = request.path_params["model_id"]
        return JSONResponse(
            {
                "type": "model",
                "id": model_id,
                "display_name": model_id,
                "created_at": "2025-09-29T00:00:00Z",
                "lifecycle": "active",
            }
        )

    async def _messages(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body: not valid JSON")
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        problem = request_problem(body, self.signatures if self.require_signatures else None)
        if problem is not None:
            return _error(400, problem)
        reply = self.replies.popleft() if self.replies else self._echo(body)
        if reply.status != 200:
            return _error(reply.status, reply.error_message)
        thinking = body.get("thinking") or {}
        think = thinking.get("type") in ("enabled", "adaptive") and bool(reply.thinking)
        blocks = self._blocks(reply, think)
        if body.get("stream"):
            events = self._events(reply, body["model"], blocks)
            return StreamingResponse(events, media_type="text/event-stream")
        return JSONResponse(self._message(reply, body["model"], blocks))

    def _echo(self, body: dict[str, Any]) -> AnthropicReply:
        for message in reversed(body["messages"]):
            if message["role"] != "user":
                continue
            content = message["content"]
            if isinstance(content, str):
                return AnthropicReply(text=f"You said: {content}")
            texts = [b["text"] for b in content if b.get("type") == "text"]
            if texts:
                return AnthropicReply(text=f"You said: {' '.join(texts)}")
        return AnthropicReply(text="Hello! How can I help you today?")

    def _blocks(self, reply: AnthropicReply, think: bool) -> list[dict[str, Any]]:
        """The answer's content blocks, complete."""
        blocks: list[dict[str, Any]] = []
        if think:
            signature = uuid.uuid4().hex
            self.signatures.add(signature)
            blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": signature})
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        for call in reply.tool_calls:
            call_id = call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}"
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call_id,
                    "name": call["name"],
                    "input": call.get("input", {}),
                }
            )
        return blocks

    def _usage(self, reply: AnthropicReply, output_tokens: int) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": reply.input_tokens,
            "output_tokens": output_tokens,
        }
        if reply.cache_creation_tokens is not None:
            usage["cache_creation_input_tokens"] = reply.cache_creation_tokens
        if reply.cache_read_tokens is not None:
            usage["cache_read_input_tokens"] = reply.cache_read_tokens
        return usage

    @staticmethod
    def _stop_reason(blocks: list[dict[str, Any]]) -> str:
        return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"

    def _message(
        self, reply: AnthropicReply, model: str, blocks: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": self._stop_reason(blocks),
            "stop_sequence": None,
            "usage": self._usage(reply, max(1, len(blocks))),
        }

    @staticmethod
    def _pieces(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A block's ``content_block_start`` payload and its deltas."""
        kind = block["type"]
        if kind == "text":
            words = block["text"].split(" ")
            deltas = [
                {"type": "text_delta", "text": word if i == 0 else " " + word}
                for i, word in enumerate(words)
            ]
            return {"type": "text", "text": ""}, deltas
        if kind == "thinking":
            words = block["thinking"].split(" ")
            deltas = [
                {"type": "thinking_delta", "thinking": word if i == 0 else " " + word}
                for i, word in enumerate(words)
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
            return {"type": "thinking", "thinking": "", "signature": ""}, deltas
        encoded = json.dumps(block["input"])
        middle = len(encoded) // 2
        deltas = [
            {"type": "input_json_delta", "partial_json": part}
            for part in ("", encoded[:middle], encoded[middle:])
        ]
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        return start, deltas

    async def _events(
        self, reply: AnthropicReply, model: str, blocks: list[dict[str, Any]]
    ) -> AsyncIterator[str]:
        start = self._message(reply, model, [])
        start.update(stop_reason=None, usage=self._usage(reply, 1))
        yield sse({"type": "message_start", "message": start})
        yield sse({"type": "ping"})
        output_tokens = 1
        for index, block in enumerate(blocks):
            opening, deltas = self._pieces(block)
            yield sse({"type": "content_block_start", "index": index, "content_block": opening})
            for delta in deltas:
                if reply.chunk_delay:
                    await asyncio.sleep(reply.chunk_delay)
                output_tokens += 1
                yield sse({"type": "content_block_delta", "index": index, "delta": delta})
            yield sse({"type": "content_block_stop", "index": index})
            if reply.stream_error is not None:
                yield sse(error_body(reply.stream_error, reply.error_message))
                return
        delta = {"stop_reason": self._stop_reason(blocks), "stop_sequence": None}
        usage = self._usage(reply, output_tokens)
        yield sse({"type": "message_delta", "delta": delta, "usage": usage})
        yield sse({"type": "message_stop"})
        self.completed_streams += 1
