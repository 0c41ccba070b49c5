"""FakeOpenAIServer: the OpenAI HTTP API shapes callpipe uses, on 127.0.0.1.

- ``POST /v1/chat/completions`` with ``stream=true``: Server-Sent Events (``data: {chunk}`` lines,
  text in ``choices[0].delta.content``, tool calls as ``delta.tool_calls`` pieces, final
  ``finish_reason``, optional ``usage`` chunk, then ``data: [DONE]``).
- ``POST /v1/audio/speech`` with ``response_format=pcm``: a streamed body of 24 kHz 16-bit mono PCM;
  with ``response_format=wav``: the same tone as a streamed WAV file, at ``sample_rate`` (Groq's
  field: one of 8000 ... 48000) or 24 kHz.
- ``POST /v1/audio/transcriptions`` (multipart ``file`` + ``model``): ``{"text": ...}``.
- ``POST /v1/responses`` with ``stream=true``: the Responses API's server-sent events (see
  :mod:`callpipe.testing.fakes.openai_responses`), from the same scripted replies.
- ``GET /v1/models``: a model list (used for connection warm-up and key checks).
- Azure OpenAI's forms of the chat endpoint: ``POST /openai/v1/chat/completions`` (the v1 API,
  bearer key) and ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``
  (the dated API: the key in an ``api-key`` header; no ``api-version`` is a 404, as on Azure).
- Groq's prefix: ``/openai/v1/models``, ``/openai/v1/audio/speech`` and
  ``/openai/v1/audio/transcriptions`` (use :attr:`FakeOpenAIServer.groq_base_url`).

Replies are scripted (:meth:`add_chat_reply`, ``transcripts``); without a script the chat
endpoint answers ``"You said: <last user message>"``. Every request is recorded, and streams the
client abandoned are counted in ``cancelled_streams``.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import functools
import itertools
import json
import math
import time
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from callpipe.audio.wav import pcm_to_wav
from callpipe.testing.fakes._server import CountsStreams, LocalASGIServer, ServedFake, fake_app, sse
from callpipe.testing.fakes.openai_responses import last_user_text, response_events


@dataclass
class ChatReply:
    """One scripted chat completion.

    ``text`` is streamed word by word (``chunk_delay`` apart); ``tool_calls`` entries are
    ``{"name": str, "arguments": dict | str, "id": str (optional)}``; without an ``id`` the
    server gives ``call_fake_<n>``, numbered from 0 across all its replies (so each id is
    unique, as OpenAI's are, and a fresh server's first call is ``call_fake_0``). A non-200
    ``status`` answers with an OpenAI-shaped error; ``drop_after_chunks`` closes the stream early.
    ``reasoning`` is streamed word by word before the answer as ``delta.reasoning_content``, the
    way DeepSeek and vLLM send a reasoning model's thinking.
    ``cached_tokens``/``reasoning_tokens``: reported in the usage chunk's
    ``prompt_tokens_details``/``completion_tokens_details`` (counted inside the prompt and
    completion totals, as OpenAI does); left out of it when None. ``reasoning_apart``: the
    reasoning tokens are left out of ``completion_tokens`` (still in ``total_tokens``), as xAI
    counts them. ``failed_code``: on ``/v1/responses`` only, the stream ends in
    ``response.failed`` with this error code (and ``error_message``) instead of
    ``response.completed``; ``incomplete_reason``: it ends in ``response.incomplete`` with this
    reason (e.g. ``"max_output_tokens"``).
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    error_message: str = "fake error"
    retry_after: float | None = None
    chunk_delay: float = 0.0
    first_chunk_delay: float = 0.0
    drop_after_chunks: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    reasoning_apart: bool = False
    failed_code: str | None = None
    incomplete_reason: str | None = None


@functools.lru_cache(maxsize=64)
def tone_pcm(secs: float, sample_rate: int, freq: float = 440.0, amplitude: int = 8000) -> bytes:
    """A sine tone as 16-bit LE mono PCM (the fakes' stand-in for speech).

    Vectorised and cached: the TTS fakes ask for the same few lengths over and over, and a
    per-sample Python loop here was 40 % of the benchmark fakes' CPU (which shares the host
    with the bot under test).
    """
    n = int(secs * sample_rate)
    step = 2 * math.pi * freq / sample_rate
    wave = amplitude * np.sin(step * np.arange(n, dtype=np.float64))
    return wave.astype("<i2").tobytes()  # truncates toward zero, as int() did


class FakeOpenAIServer(CountsStreams, ServedFake):
    """See the module docstring. Use as ``async with FakeOpenAIServer() as server:``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        speech_secs_per_word: float = 0.1,
        speech_chunk_secs: float = 0.05,
        speech_chunk_delay: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.speech_secs_per_word = speech_secs_per_word
        self.speech_chunk_secs = speech_chunk_secs
        self.speech_chunk_delay = speech_chunk_delay
        self.chat_replies: deque[ChatReply] = deque()
        self.transcripts: deque[str] = deque()
        self.speech_replies: deque[int] = deque()
        """HTTP statuses for the next speech requests (200 = speak)."""
        self.transcription_statuses: deque[int] = deque()
        """HTTP statuses for the next transcription requests (200 = answer)."""
        self.chat_requests: list[dict[str, Any]] = []
        self.responses_requests: list[dict[str, Any]] = []
        """Bodies of every ``/v1/responses`` request."""
        self.chat_urls: list[str] = []
        """Path and query of every chat request (Azure's URL forms)."""
        self.request_headers: list[dict[str, str]] = []
        """Headers of every authorized request (organization/project checks)."""
        self.speech_requests: list[dict[str, Any]] = []
        self.transcription_requests: list[dict[str, Any]] = []
        self.cancelled_streams = 0
        self.completed_streams = 0
        self.stream_started = asyncio.Event()
        self._call_numbers = itertools.count()
        self._server = LocalASGIServer(
            fake_app(
                [
                    Route("/v1/models", self._models, methods=["GET"]),
                    Route("/v1/chat/completions", self._chat, methods=["POST"]),
                    Route("/v1/responses", self._responses, methods=["POST"]),
                    Route("/openai/v1/chat/completions", self._chat, methods=["POST"]),
                    Route(
                        "/openai/deployments/{deployment}/chat/completions",
                        self._azure_chat,
                        methods=["POST"],
                    ),
                    Route("/v1/audio/speech", self._speech, methods=["POST"]),
                    Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
                    Route("/openai/v1/models", self._models, methods=["GET"]),
                    Route("/openai/v1/audio/speech", self._speech, methods=["POST"]),
                    Route(
                        "/openai/v1/audio/transcriptions", self._transcriptions, methods=["POST"]
                    ),
                    Route(
                        "/{path:path}",
                        self._unknown,
                        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                    ),
                ]
            )
        )

    # ------------------------------------------------------------------ control

    @property
    def base_url(self) -> str:
        return self._http_origin + "/v1"

    @property
    def groq_base_url(self) -> str:
        """The base URL a Groq client uses (``.../openai/v1``)."""
        return self._http_origin + "/openai/v1"

    def add_chat_reply(self, text: str = "", **kwargs: Any) -> ChatReply:
        reply = ChatReply(text=text, **kwargs)
        self.chat_replies.append(reply)
        return reply

    # ------------------------------------------------------------------ helpers

    def _unauthorized(self, request: Request) -> Response | None:
        self.request_headers.append(dict(request.headers))
        if self.api_key is None:
            return None
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Incorrect API key provided.", "invalid_api_key")

    # ------------------------------------------------------------------ endpoints

    async def _unknown(self, request: Request) -> Response:
        """OpenAI's answer to a wrong path (a client with a bad base URL sees this)."""
        return _error(
            404,
            f"Invalid URL ({request.method} {request.url.path})",
            None,
            kind="invalid_request_error",
        )

    async def _models(self, request: Request) -> Response:
        return self._unauthorized(request) or JSONResponse(
            {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
        )

    async def _azure_chat(self, request: Request) -> Response:
        """Azure's dated form: ``api-version`` required, key in the ``api-key`` header."""
        self.request_headers.append(dict(request.headers))
        if "api-version" not in request.query_params:
            return _error(404, "Resource not found", "404")
        if self.api_key is not None and request.headers.get("api-key") != self.api_key:
            return _error(401, "Access denied due to invalid subscription key.", "401")
        return await self._chat_reply(request)

    async def _chat(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        return await self._chat_reply(request)

    async def _chat_reply(self, request: Request) -> Response:
        self.chat_urls.append(f"{request.url.path}?{request.url.query}".rstrip("?"))
        body = await request.json()
        self.chat_requests.append(body)
        reply = self.chat_replies.popleft() if self.chat_replies else self._echo(body)
        refused = _refusal(reply, body)
        if refused is not None:
            return refused
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        call_ids = self._call_ids(reply)
        return StreamingResponse(
            self._counted(self._chat_events(reply, call_ids, body.get("model", ""), include_usage)),
            media_type="text/event-stream",
        )

    def _call_ids(self, reply: ChatReply) -> list[str]:
        """The ids of ``reply``'s tool calls: scripted, or made up in order."""
        return [
            str(call.get("id") or f"call_fake_{next(self._call_numbers)}")
            for call in reply.tool_calls
        ]

    async def _first_chunk(self, reply: ChatReply) -> None:
        """A stream has begun (``stream_started``): wait ``reply.first_chunk_delay``."""
        self.stream_started.set()
        if reply.first_chunk_delay:
            await asyncio.sleep(reply.first_chunk_delay)

    def _echo(self, body: dict[str, Any]) -> ChatReply:
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        if not users:
            return ChatReply(text="Hello! How can I help you today?")
        return ChatReply(text=f"You said: {users[-1].get('content', '')}")

    async def _chat_events(
        self, reply: ChatReply, call_ids: list[str], model: str, include_usage: bool
    ) -> AsyncGenerator[str, None]:
        await self._first_chunk(reply)
        created = int(time.time())
        chunks = _chat_chunks(reply, call_ids, model, created)
        for n, chunk in enumerate(chunks):
            await _pace(reply, n)
            yield f"data: {json.dumps(chunk)}\n\n"
        if include_usage:
            prompt = 10 + (reply.cached_tokens or 0)
            reasoning = reply.reasoning_tokens or 0
            completion = len(chunks) + (0 if reply.reasoning_apart else reasoning)
            usage: dict[str, Any] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + len(chunks) + reasoning,
            }
            if reply.cached_tokens is not None:
                usage["prompt_tokens_details"] = {
                    "cached_tokens": reply.cached_tokens,
                    "audio_tokens": 0,
                }
            if reply.reasoning_tokens is not None:
                usage["completion_tokens_details"] = {
                    "reasoning_tokens": reply.reasoning_tokens,
                    "audio_tokens": 0,
                }
            final = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            yield f"data: {json.dumps(final)}\n\n"
        yield "data: [DONE]\n\n"

    async def _responses(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        body = await request.json()
        self.responses_requests.append(body)
        if self.chat_replies:
            reply = self.chat_replies.popleft()
        else:
            said = last_user_text(body)
            reply = ChatReply(text="Hello! How can I help you today?")
            if said is not None:
                reply = ChatReply(text=f"You said: {said}")
        refused = _refusal(reply, body)
        if refused is not None:
            return refused
        call_ids = self._call_ids(reply)
        events = response_events(reply, call_ids, body, int(time.time()))
        return StreamingResponse(
            self._counted(self._response_stream(reply, events)), media_type="text/event-stream"
        )

    async def _response_stream(
        self, reply: ChatReply, events: list[dict[str, Any]]
    ) -> AsyncGenerator[str, None]:
        await self._first_chunk(reply)
        for n, event in enumerate(events):
            await _pace(reply, n, delay=event["type"].endswith(".delta"))
            yield sse(event)

    async def _speech(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        body = await request.json()
        self.speech_requests.append(body)
        status = self.speech_replies.popleft() if self.speech_replies else 200
        if status != 200:
            return _error(status, "scripted speech error", None)
        audio_format = body.get("response_format")
        rate = body.get("sample_rate", 24000) if audio_format == "wav" else 24000
        if audio_format not in ("pcm", "wav"):
            return _error(400, "this fake only produces pcm and wav", None)
        if rate not in _SPEECH_RATES:
            return _error(400, f"sample_rate must be one of {list(_SPEECH_RATES)}", None)
        words = max(1, len(str(body.get("input", "")).split()))
        pcm = tone_pcm(words * self.speech_secs_per_word, rate)
        if audio_format == "wav":
            pcm = pcm_to_wav(pcm, rate)
        step = int(self.speech_chunk_secs * rate) * 2

        async def chunks() -> AsyncGenerator[bytes, None]:
            for i in range(0, len(pcm), step):
                yield pcm[i : i + step]
                await asyncio.sleep(self.speech_chunk_delay)

        return StreamingResponse(self._counted(chunks()), media_type=f"audio/{audio_format}")

    async def _transcriptions(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return _error(400, "expected multipart/form-data", None)
        fields = _parse_multipart(content_type, await request.body())
        self.transcription_requests.append(fields)
        status = self.transcription_statuses.popleft() if self.transcription_statuses else 200
        if status != 200:
            return _error(status, "scripted transcription error", None)
        if "file" not in fields or "model" not in fields:
            return _error(400, "file and model are required", None)
        text = self.transcripts.popleft() if self.transcripts else "hello"
        return JSONResponse({"text": text})


_SPEECH_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


def _chat_chunks(
    reply: ChatReply, call_ids: list[str], model: str, created: int
) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    thoughts = reply.reasoning.split(" ") if reply.reasoning else []
    for i, word in enumerate(thoughts):
        chunks.append(chunk({"reasoning_content": word if i == 0 else " " + word}))
    words = reply.text.split(" ") if reply.text else []
    for i, word in enumerate(words):
        chunks.append(chunk({"content": word if i == 0 else " " + word}))
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, call_ids, strict=True)):
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        head = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            chunks.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    chunks.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
    return chunks


def _refusal(reply: ChatReply, body: dict[str, Any]) -> Response | None:
    """The error a chat or Responses request gets instead of a stream (None: it streams)."""
    if reply.status != 200:
        headers = {}
        if reply.retry_after is not None:
            headers["retry-after"] = str(reply.retry_after)
        return _error(reply.status, reply.error_message, None, headers)
    if not body.get("stream"):
        return _error(400, "this fake only streams", None)
    return None


async def _pace(reply: ChatReply, n: int, *, delay: bool = True) -> None:
    """Before the ``n``-th scripted piece of ``reply``'s stream: drop it, or wait between
    pieces (``delay``: this piece is one that waits)."""
    if reply.drop_after_chunks is not None and n >= reply.drop_after_chunks:
        raise ConnectionAbortedError("scripted drop")
    if n and delay and reply.chunk_delay:
        await asyncio.sleep(reply.chunk_delay)


def _error(
    status: int,
    message: str,
    code: str | None,
    headers: dict[str, str] | None = None,
    *,
    kind: str | None = None,
) -> Response:
    kind = kind or {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
        status, "server_error"
    )
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
        headers=headers,
    )


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields of a multipart/form-data body: text fields as str, files as bytes."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename():
            fields[name] = data
            fields[f"{name}.filename"] = part.get_filename()
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields
