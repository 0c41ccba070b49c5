"""GoogleLLMService: Gemini over its REST API, streamed (``streamGenerateContent?alt=sse``).

httpx against ``{base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse`` with the key in
``x-goog-api-key``; no Google SDK at run time. The conversation is the same context the OpenAI
service uses (Chat Completions messages); :mod:`callpipe.services.google._gemini` turns it into
Gemini ``contents``, ``systemInstruction``, ``tools`` and ``toolConfig``.

Each SSE event is a ``GenerateContentResponse``: text parts become ``LLMTextFrame``\\ s as they
arrive (parts marked ``thought`` are skipped), ``functionCall`` parts become tool calls run by
:class:`~callpipe.services.llm_service.LLMService` (their ``thoughtSignature`` is kept and sent
back with the call, as thinking models require), ``usageMetadata`` becomes usage metrics.
Start-up warms the connection with ``GET /v1beta/models/{model}`` so a rejected key is reported
at start. For phone latency, 2.5 Flash models default to no thinking (``thinkingBudget: 0``).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from callpipe.frames.frames import (
    LLMTextFrame,
    StartFrame,
)
from callpipe.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData
from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import base_url
from callpipe.services._http import error_message, is_retryable, retry_after_secs
from callpipe.services._llm_stream import StreamingHTTPLLMService, _StreamError
from callpipe.services.ai_service import ServiceAuthError, resolve_api_key
from callpipe.services.google._gemini import (
    GENERATED_ID_PREFIX,
    convert_messages,
    convert_tool_choice,
    convert_tools,
)
from callpipe.services.llm_service import ToolCall
from callpipe.utils.http_pool import pooled_transport

logger = logging.getLogger(__name__)

GEMINI_URL = "https://generativelanguage.googleapis.com"
GEMINI_URL_ENV = "CALLPIPE_GEMINI_URL"
NO_THINKING_MODELS = ("gemini-2.5-flash",)
"""Models where thinking can be switched off (``thinkingBudget: 0``) for latency."""


class GoogleLLMService(StreamingHTTPLLMService):
    """Gemini chat over REST with streaming and function calling (see the module docstring).

    With ``retry_on_timeout``, a request that has streamed no text or function call
    ``retry_timeout_secs`` after it was sent is sent again once (see
    :mod:`callpipe.services._llm_stream`).
    """

    class InputParams(BaseModel):
        """``generationConfig`` options (``None`` = Gemini's default)."""

        model_config = ConfigDict(extra="forbid")

        max_tokens: int | None = Field(default=4096, ge=1)
        temperature: float | None = Field(default=None, ge=0.0, le=2.0)
        top_k: int | None = Field(default=None, ge=0)
        top_p: float | None = Field(default=None, ge=0.0, le=1.0)
        thinking_budget: int | None = None
        """None: 0 on 2.5 Flash models (no thinking delay on a call), else the model's default."""
        extra: dict[str, Any] = Field(default_factory=dict)
        """Extra ``generationConfig`` fields, in Gemini's camelCase."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "gemini-2.5-flash",
        params: InputParams | None = None,
        system_instruction: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_config: dict[str, Any] | None = None,
        base_url: str | None = None,
        api_version: str = "v1beta",
        request_timeout_secs: float = 30.0,
        max_retries: int = 1,
        retry_timeout_secs: float | None = 5.0,
        retry_on_timeout: bool | None = False,
        warmup: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, **kwargs)
        key = api_key or os.environ.get("GEMINI_API_KEY") or None
        self._api_key: str = resolve_api_key(type(self).__name__, key, "GOOGLE_API_KEY")
        self._base_url = _base(base_url)
        self._api_version = api_version
        self._params = params or GoogleLLMService.InputParams()
        self._system_instruction = system_instruction
        self._tools = tools
        self._tool_config = tool_config
        self._timeout = request_timeout_secs
        self._max_retries = max_retries
        self._init_retry_on_timeout(retry_timeout_secs, retry_on_timeout)
        self._warmup = warmup
        self._client: httpx.AsyncClient | None = None
        self._signatures: dict[str, str] = {}
        """Tool call id → the ``thoughtSignature`` Gemini sent with the call."""
        self._call_counter = 0

    # ------------------------------------------------------------------ connection

    def _make_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self._base_url,
            headers={"x-goog-api-key": self._api_key},
            timeout=httpx.Timeout(self._timeout, connect=5.0),
            transport=pooled_transport(),
        )

    async def start(self, frame: StartFrame) -> None:
        self._client = self._make_client()
        if not self._warmup:
            return
        try:
            response = await self._client.get(
                f"/{self._api_version}/models/{self.model_name}", timeout=5.0
            )
        except httpx.HTTPError as exc:
            logger.debug("%s: warm-up request failed: %s", self, exc)
            return
        if response.status_code in (401, 403) or (
            response.status_code == 400 and b"API_KEY" in response.content
        ):
            raise ServiceAuthError(
                f"{self}: Gemini rejected the API key (HTTP {response.status_code}): "
                f"{error_message(response.status_code, response.content)}. "
                "Check api_key / GOOGLE_API_KEY."
            )

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------------ request

    def _generation_config(self) -> dict[str, Any]:
        p = self._params
        config: dict[str, Any] = {}
        if p.max_tokens is not None:
            config["maxOutputTokens"] = p.max_tokens
        if p.temperature is not None:
            config["temperature"] = p.temperature
        if p.top_k is not None:
            config["topK"] = p.top_k
        if p.top_p is not None:
            config["topP"] = p.top_p
        budget = p.thinking_budget
        if budget is None and (self.model_name or "").startswith(NO_THINKING_MODELS):
            budget = 0
        if budget is not None:
            config["thinkingConfig"] = {"thinkingBudget": budget}
        config.update(p.extra)
        return config

    def build_request(self, context: ChatContext) -> dict[str, Any]:
        """The ``generateContent`` body for ``context`` (public for tests and debugging)."""
        messages = context.messages_for_api()
        if self._system_instruction:
            messages = [{"role": "system", "content": self._system_instruction}, *messages]
        system, contents = convert_messages(messages, self._signatures)
        if not contents and system is not None:
            # Only instructions so far (the bot speaks first): Gemini needs a turn to answer.
            contents, system = [{"role": "user", "parts": system["parts"]}], None
        body: dict[str, Any] = {"contents": contents}
        if system is not None:
            body["systemInstruction"] = system
        context_tools, tool_choice = _tools_of(context)
        tools = convert_tools(context_tools or self._tools)
        if tools:
            body["tools"] = tools
            tool_config = convert_tool_choice(tool_choice) or self._tool_config
            if tool_config:
                body["toolConfig"] = tool_config
        config = self._generation_config()
        if config:
            body["generationConfig"] = config
        return body

    # ------------------------------------------------------------------ completion

    def _ensure_client(self) -> None:
        if self._client is None:
            self._client = self._make_client()

    def _is_auth_error(self, exc: _StreamError) -> bool:
        # Gemini answers a bad key with 400 INVALID_ARGUMENT, "API key not valid".
        return super()._is_auth_error(exc) or "API key not valid" in str(exc)

    async def _stream_once(self, body: dict[str, Any], produced: list[bool]) -> list[ToolCall]:
        assert self._client is not None
        calls: list[ToolCall] = []
        self.reset_ttfb_metrics()
        self.start_ttfb_metrics()
        path = f"/{self._api_version}/models/{self.model_name}:streamGenerateContent"
        async with self._client.stream("POST", path, params={"alt": "sse"}, json=body) as response:
            if response.status_code != 200:
                content = await response.aread()
                status = response.status_code
                retry_in = retry_after_secs(response, 0.5, 2.0) if is_retryable(status) else None
                message = error_message(status, content)
                raise _StreamError(status, f"HTTP {status} from Gemini: {message}", retry_in)
            usage: dict[str, Any] | None = None
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                try:
                    chunk = json.loads(line[5:].strip())
                except ValueError:
                    logger.warning("%s: skipping a malformed stream line", self)
                    continue
                if not isinstance(chunk, dict):
                    continue
                if "error" in chunk:
                    raise _StreamError(500, f"error in stream: {error_message(500, line.encode())}")
                if isinstance(chunk.get("usageMetadata"), dict):
                    usage = chunk["usageMetadata"]
                await self._handle_chunk(chunk, calls, produced)
        if usage is not None and self.usage_metrics_enabled:
            prompt = int(usage.get("promptTokenCount") or 0)
            completion = int(usage.get("candidatesTokenCount") or 0)
            await self.push_metrics(
                LLMUsageMetricsData(
                    processor=self.name,
                    model=self.model_name,
                    value=LLMTokenUsage(
                        prompt_tokens=prompt,
                        completion_tokens=completion,
                        total_tokens=int(usage.get("totalTokenCount") or prompt + completion),
                    ),
                )
            )
        return calls

    async def _handle_chunk(
        self, chunk: dict[str, Any], calls: list[ToolCall], produced: list[bool]
    ) -> None:
        candidates = chunk.get("candidates") or []
        if not candidates:
            return
        content = candidates[0].get("content") or {}
        for part in content.get("parts") or ():
            if not isinstance(part, dict) or part.get("thought"):
                continue
            text = part.get("text")
            function_call = part.get("functionCall")
            if (text or function_call) and not produced[0]:
                produced[0] = True
                await self.stop_ttfb_metrics()
            if isinstance(function_call, dict) and function_call.get("name"):
                call_id = function_call.get("id")
                if not call_id:
                    self._call_counter += 1
                    call_id = f"{GENERATED_ID_PREFIX}{self._call_counter}"
                if part.get("thoughtSignature"):
                    self._signatures[str(call_id)] = str(part["thoughtSignature"])
                arguments = json.dumps(function_call.get("args") or {})
                calls.append(
                    ToolCall(id=str(call_id), name=function_call["name"], arguments=arguments)
                )
            elif text:
                await self.push_frame(LLMTextFrame(text))


def _tools_of(context: ChatContext) -> tuple[list[dict[str, Any]] | None, Any]:
    """The context's tools (Chat Completions format) and tool choice, from either kind of
    context (the older ``OpenAILLMContext`` or 1.14's ``LLMContext``)."""
    return context.tools_for_api(), context.tool_choice_for_api()


def _base(explicit: str | None) -> str:
    return base_url(explicit, GEMINI_URL_ENV, GEMINI_URL)
