"""FakeGeminiServer: the Gemini REST API (``generativelanguage.googleapis.com``) on 127.0.0.1.

The documented contract (https://ai.google.dev/api/generate-content and the official
``google-genai`` SDK's models):

- ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` (and under ``/v1``, the
  version the current SDK uses) → Server-Sent Events, one
  ``GenerateContentResponse`` per ``data:`` line (``candidates[0].content.parts`` with ``text``
  or ``functionCall {name, args, id}`` + ``thoughtSignature``; ``finishReason`` and
  ``usageMetadata`` on the last); without ``alt=sse`` the same responses as one JSON array.
  A scripted ``thoughts`` text comes first as one ``{"text", "thought": true}`` part, only when
  the request asked for it (``generationConfig.thinkingConfig.includeThoughts``).
- ``POST /v1beta/models/{model}:generateContent`` → one response.
- ``GET /v1beta/models/{model}`` and ``GET /v1beta/models``.
- The key in ``x-goog-api-key`` (or ``?key=``). A bad key gets HTTP 400 ``INVALID_ARGUMENT``
  with reason ``API_KEY_INVALID``, as Gemini answers; errors are ``{"error": {"code",
  "message", "status"}}``.
- Requests are checked: ``contents`` non-empty, roles ``user``/``model``, one data field per
  part, ``functionResponse.response`` an object, and (``require_thought_signatures``) a
  ``functionCall`` sent back without the ``thoughtSignature`` it came with is refused, as
  Gemini 3 models do.

Replies are scripted (:meth:`add_reply`); without a script it answers ``"You said: <last user
text>"``. Every request body is recorded in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from callpipe.testing.fakes._google import google_rpc_error
from callpipe.testing.fakes._server import CountsStreams, LocalASGIServer, ServedHTTPFake, fake_app

DATA_FIELDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse")


@dataclass
class GeminiReply:
    """One scripted answer: ``text`` streamed word by word and/or ``function_calls``
    (``{"name", "args"}``); a non-200 ``status`` answers with a Gemini-shaped error;
    ``thoughts``: a thought summary sent before them when the request includes thoughts;
    ``cached_tokens``/``thoughts_tokens``: reported as ``usageMetadata.cachedContentTokenCount``
    (part of ``promptTokenCount``) and ``thoughtsTokenCount`` (apart from the candidates)."""

    text: str = ""
    thoughts: str = ""
    function_calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    error_message: str = "fake error"
    chunk_delay: float = 0.0
    cached_tokens: int | None = None
    thoughts_tokens: int | None = None


def _error(status: int, message: str, reason: str | None = None) -> Response:
    return google_rpc_error(status, message, reason)


def request_problem(body: dict[str, Any], signatures: set[str] | None) -> str | None:
    """Why Gemini would refuse this ``generateContent`` body (None: it would not)."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for n, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"* contents[{n}].role: must be user or model"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* contents[{n}].parts: contents.parts must not be empty"
        for part in parts:
            fields = [f for f in DATA_FIELDS if f in part]
            if len(fields) != 1:
                return f"* contents[{n}].parts: exactly one data field is required"
            response = part.get("functionResponse")
            if response is not None and (
                not response.get("name") or not isinstance(response.get("response"), dict)
            ):
                return f"* contents[{n}].parts.function_response: name and response are required"
            call = part.get("functionCall")
            if call is not None and signatures is not None:
                if part.get("thoughtSignature") not in signatures:
                    return (
                        f"Function call is missing a thought_signature in functionCall parts "
                        f"(contents[{n}])"
                    )
    system = body.get("systemInstruction")
    if system is not None and not (isinstance(system, dict) and system.get("parts")):
        return "* systemInstruction.parts: must not be empty"
    return None


class FakeGeminiServer(CountsStreams, ServedHTTPFake):
    """See the module docstring. ``async with FakeGeminiServer() as fake: fake.base_url``."""

    def __init__(
        self, *, api_key: str | None = "test-key", require_thought_signatures: bool = True
    ) -> None:
        self.api_key = api_key
        self.require_thought_signatures = require_thought_signatures
        self.replies: deque[GeminiReply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.signatures: set[str] = set()
        self.completed_streams = 0
        self.cancelled_streams = 0
        self._server = LocalASGIServer(
            fake_app(
                [
                    route
                    for version in ("v1beta", "v1")
                    for route in (
                        Route(f"/{version}/models", self._list, methods=["GET"]),
                        Route(
                            f"/{version}/models/{{target:path}}",
                            self._models,
                            methods=["GET", "POST"],
                        ),
                    )
                ]
            )
        )

    def add_reply(self, text: str = "", **kwargs: Any) -> GeminiReply:
        reply = GeminiReply(text=text, **kwargs)
        self.replies.append(reply)
        return reply

    def _denied(self, request: Request) -> Response | None:
        if self.api_key is None:
            return None
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if key == self.api_key:
            return None
        return _error(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")

    async def _list(self, request: Request) -> Response:
        return self._denied(request) or JSONResponse(
            {"models": [{"name": "models/gemini-2.5-flash"}]}
        )

    async def _models(self, request: Request) -> Response:
        self.paths.append(request.url.path + ("?" + request.url.query if request.url.query else ""))
        denied = self._denied(request)
        if denied is not None:
            return denied
        target = request.path_params["target"]
        if request.method == "GET":
            return JSONResponse({"name": f"models/{target}", "displayName": target})
        model, _, method = target.partition(":")
        if method not in ("streamGenerateContent", "generateContent"):
            return _error(404, f"Method {method} not found")
        body = await request.json()
        self.requests.append(body)
        signatures = self.signatures if self.require_thought_signatures else None
        problem = request_problem(body, signatures)
        if problem is not None:
            return _error(400, problem)
        reply = self.replies.popleft() if self.replies else self._echo(body)
        if reply.status != 200:
            return _error(reply.status, reply.error_message)
        config = body.get("generationConfig") or {}
        include_thoughts = bool((config.get("thinkingConfig") or {}).get("includeThoughts"))
        responses = self._responses(reply, model, include_thoughts)
        if method == "generateContent":
            return JSONResponse(_merge(responses))
        if request.query_params.get("alt") != "sse":
            return JSONResponse(responses)
        return StreamingResponse(
            self._counted(self._events(responses, reply)), media_type="text/event-stream"
        )

    def _echo(self, body: dict[str, Any]) -> GeminiReply:
        for content in reversed(body.get("contents", [])):
            if content.get("role") == "user":
                texts = [p["text"] for p in content.get("parts", []) if "text" in p]
                if texts:
                    return GeminiReply(text=f"You said: {' '.join(texts)}")
        return GeminiReply(text="Hello! How can I help you today?")

    def _responses(
        self, reply: GeminiReply, model: str, include_thoughts: bool = False
    ) -> list[dict[str, Any]]:
        response_id = uuid.uuid4().hex[:20]
        parts: list[list[dict[str, Any]]] = []
        if reply.thoughts and include_thoughts:
            parts.append([{"text": reply.thoughts, "thought": True}])
        words = reply.text.split(" ") if reply.text else []
        for i, word in enumerate(words):
            parts.append([{"text": word if i == 0 else " " + word}])
        for call in reply.function_calls:
            signature = uuid.uuid4().hex
            self.signatures.add(signature)
            function_call = {"name": call["name"], "args": call.get("args", {})}
            if call.get("id"):
                function_call["id"] = call["id"]
            parts.append([{"functionCall": function_call, "thoughtSignature": signature}])
        if not parts:
            parts.append([{"text": ""}])
        responses = []
        for n, chunk_parts in enumerate(parts):
            candidate: dict[str, Any] = {
                "content": {"parts": chunk_parts, "role": "model"},
                "index": 0,
            }
            response: dict[str, Any] = {
                "candidates": [candidate],
                "modelVersion": model,
                "responseId": response_id,
            }
            if n == len(parts) - 1:
                candidate["finishReason"] = "STOP"
                prompt = 12 + (reply.cached_tokens or 0)
                thoughts = reply.thoughts_tokens or 0
                usage: dict[str, Any] = {
                    "promptTokenCount": prompt,
                    "candidatesTokenCount": len(parts),
                    "totalTokenCount": prompt + len(parts) + thoughts,
                }
                if reply.cached_tokens is not None:
                    usage["cachedContentTokenCount"] = reply.cached_tokens
                if reply.thoughts_tokens is not None:
                    usage["thoughtsTokenCount"] = reply.thoughts_tokens
                response["usageMetadata"] = usage
            responses.append(response)
        return responses

    async def _events(
        self, responses: list[dict[str, Any]], reply: GeminiReply
    ) -> AsyncGenerator[str, None]:
        for n, response in enumerate(responses):
            if n and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            yield f"data: {json.dumps(response)}\r\n\r\n"


def _merge(responses: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streamed answer: every chunk's parts in one candidate."""
    parts = [p for r in responses for p in r["candidates"][0]["content"]["parts"]]
    merged = dict(responses[-1])
    merged["candidates"] = [
        {**responses[-1]["candidates"][0], "content": {"parts": parts, "role": "model"}}
    ]
    return merged
