"""FakeAWSBedrockServer: Amazon Bedrock's ``ConverseStream`` on 127.0.0.1.

The documented contract (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
and the ``bedrock-runtime`` model botocore ships):

- **Request.** ``POST /model/{modelId}/converse-stream`` (the id percent-encoded), signed with
  SigV4 for the service ``bedrock`` (checked as the Polly fake checks it), a JSON body with
  ``messages`` (``role`` ``user``/``assistant``, ``content`` blocks ``text`` / ``toolUse`` /
  ``toolResult``) and optionally ``system``, ``inferenceConfig``, ``toolConfig``,
  ``additionalModelRequestFields``, ``performanceConfig``. A body that breaks the rules the
  fake checks (first turn not ``user``, roles not alternating, a ``toolUse`` without a
  ``toolConfig``) gets a 400 ``ValidationException``.
- **Answer.** 200, ``Content-Type: application/vnd.amazon.eventstream``: binary frames, each
  with the headers ``:message-type`` (``event``), ``:event-type`` and ``:content-type``
  (``application/json``) and a JSON payload: ``messageStart`` (``role``), per block
  ``contentBlockStart`` (tool blocks only: ``start`` is a union, and a text block has no
  member to set; ``start.toolUse`` carries ``toolUseId`` and ``name``),
  ``contentBlockDelta`` (``delta.text`` or ``delta.toolUse.input``, a piece of JSON) and
  ``contentBlockStop``, then ``messageStop`` (``stopReason``) and ``metadata`` (``usage``,
  ``metrics.latencyMs``). An error inside the stream is a frame whose ``:message-type`` is
  ``exception`` and ``:exception-type`` the error's member name (``throttlingException``, ...).
- **Errors before the stream** are AWS's REST JSON shape (``x-amzn-ErrorType`` and
  ``{"message"}``): 403 for keys, 400 ``ValidationException``, 429 ``ThrottlingException``, 500
  ``InternalServerException``, 503 ``ServiceUnavailableException``.

The event-stream encoder is callpipe's (:mod:`callpipe.services.aws.eventstream`: botocore has
only the decoder); the client side decodes with botocore's.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import Route

from callpipe.services.aws.eventstream import encode_message
from callpipe.testing.fakes._server import LocalASGIServer, ServedHTTPFake, fake_app
from callpipe.testing.fakes.aws import FAKE_ACCESS_KEY_ID, aws_error, check_sigv4

SERVICE = "bedrock"
_ERROR_CODES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """A ``ConverseStream`` event frame."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, json.dumps(payload).encode())


def exception_frame(member: str, message: str) -> bytes:
    """An error inside the stream, e.g. ``throttlingException``."""
    headers = {
        ":exception-type": member,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode())


@dataclass
class BedrockReply:
    """One scripted answer: ``text`` (streamed a word at a time), then ``tool_calls``
    (``{"name", "arguments"}``); ``exception`` (a member name such as
    ``throttlingException``) is sent after ``exception_after`` events instead of the rest."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 12
    output_tokens: int = 7
    exception: str | None = None
    exception_after: int = 0


class FakeAWSBedrockServer(ServedHTTPFake):
    """Bedrock's ``ConverseStream`` on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        secret_key: str | None = "test-secret",
        access_key_id: str = FAKE_ACCESS_KEY_ID,
        event_delay: float = 0.0,
    ) -> None:
        self.secret_key = secret_key
        self.access_key_id = access_key_id
        self.event_delay = event_delay
        self.requests: list[dict[str, Any]] = []
        """Each accepted request's JSON body."""
        self.model_ids: list[str] = []
        """The model id of each accepted request."""
        self.headers: list[dict[str, str]] = []
        self.signed_headers: list[list[str]] = []
        self.statuses: deque[int] = deque()
        """HTTP statuses for the next valid requests (200 = answer)."""
        self.replies: deque[BedrockReply] = deque()
        self.completed_streams = 0
        self.cancelled_streams = 0
        route = Route("/model/{model_id:path}/converse-stream", self._converse, methods=["POST"])
        self._server = LocalASGIServer(fake_app([route]))

    def add_reply(
        self, text: str = "", *, tool_calls: list[dict[str, Any]] | None = None, **kw: Any
    ) -> BedrockReply:
        """Script the next answer (unscripted requests get ``"Hello from Bedrock."``)."""
        reply = BedrockReply(text=text, tool_calls=list(tool_calls or ()), **kw)
        self.replies.append(reply)
        return reply

    async def _converse(self, request: Any) -> Any:
        from starlette.responses import StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        raw = await request.body()
        refused = check_sigv4(
            request,
            headers,
            raw,
            service=SERVICE,
            access_key_id=self.access_key_id,
            secret_key=self.secret_key,
            signed_headers=self.signed_headers,
        )
        if refused is not None:
            return refused
        try:
            body = json.loads(raw)
        except ValueError:
            return aws_error(400, "SerializationException", "the body is not JSON")
        if not isinstance(body, dict):
            return aws_error(400, "SerializationException", "the body is not a JSON object")
        problem = _validate(body)
        if problem is not None:
            return aws_error(400, "ValidationException", problem)
        self.requests.append(body)
        self.model_ids.append(str(request.path_params["model_id"]))
        status = self.statuses.popleft() if self.statuses else 200
        if status != 200:
            code = _ERROR_CODES.get(status, "InternalServerException")
            return aws_error(status, code, f"scripted error {status}")
        reply = self.replies.popleft() if self.replies else BedrockReply("Hello from Bedrock.")

        async def frames() -> Any:
            try:
                for frame in _frames(reply):
                    yield frame
                    await asyncio.sleep(self.event_delay)
            except BaseException:
                self.cancelled_streams += 1
                raise
            self.completed_streams += 1

        return StreamingResponse(
            frames(),
            media_type="application/vnd.amazon.eventstream",
            headers={"x-amzn-RequestId": str(uuid.uuid4())},
        )


def _events(reply: BedrockReply) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "messageStart", {"role": "assistant"}
    index = 0
    if reply.text:
        words = reply.text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}
        yield "contentBlockStop", {"contentBlockIndex": index}
        index += 1
    for call in reply.tool_calls:
        tool_id = str(call.get("id") or f"tooluse_{uuid.uuid4().hex[:20]}")
        start = {"toolUse": {"toolUseId": tool_id, "name": str(call["name"])}}
        yield "contentBlockStart", {"contentBlockIndex": index, "start": start}
        arguments = json.dumps(call.get("arguments") or {})
        middle = len(arguments) // 2
        for piece in (arguments[:middle], arguments[middle:]):
            delta = {"toolUse": {"input": piece}}
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
        yield "contentBlockStop", {"contentBlockIndex": index}
        index += 1
    stop = "tool_use" if reply.tool_calls else "end_turn"
    yield "messageStop", {"stopReason": stop}
    usage = {
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
        "totalTokens": reply.input_tokens + reply.output_tokens,
    }
    yield "metadata", {"usage": usage, "metrics": {"latencyMs": 42}}


def _frames(reply: BedrockReply) -> Iterator[bytes]:
    for sent, (event_type, payload) in enumerate(_events(reply)):
        if reply.exception is not None and sent == reply.exception_after:
            yield exception_frame(reply.exception, f"scripted {reply.exception}")
            return
        yield event_frame(event_type, payload)


def _validate(body: dict[str, Any]) -> str | None:
    """What Bedrock would refuse in ``body`` (the checks the fake makes), else None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    if messages[0].get("role") != "user":
        return "A conversation must start with a user message."
    uses_tools = False
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role must be user or assistant"
        if i and messages[i - 1].get("role") == role:
            return "A conversation must alternate between user and assistant roles."
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return f"messages.{i}.content must be a non-empty list"
        for block in content:
            if not isinstance(block, dict) or len(block) != 1:
                return f"messages.{i}.content has a block that is not exactly one member"
            if "toolUse" in block or "toolResult" in block:
                uses_tools = True
            elif "text" in block and not block["text"]:
                return f"messages.{i}.content has an empty text block"
    if uses_tools and not (body.get("toolConfig") or {}).get("tools"):
        return (
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    return None
