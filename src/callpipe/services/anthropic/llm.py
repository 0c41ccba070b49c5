"""AnthropicLLMService: Claude over the Messages API, streamed, with httpx (no Anthropic SDK).

Wire format (https://docs.anthropic.com/en/api/messages-streaming): ``POST {base_url}/v1/messages``
with ``x-api-key`` and ``anthropic-version: 2023-06-01``, a JSON body with ``model``,
``max_tokens``, ``system``, ``messages``, ``tools`` and ``"stream": true``. The answer is
Server-Sent Events, each ``event: <type>`` plus ``data: {json}`` whose ``type`` repeats it:

- ``message_start`` (the message with its ``usage`` so far), ``ping`` (keep-alive);
- ``content_block_start`` / ``content_block_delta`` / ``content_block_stop`` per block, with an
  ``index``: ``text`` blocks stream ``text_delta``\\ s (pushed as ``LLMTextFrame``\\ s),
  ``tool_use`` blocks stream their input as ``input_json_delta`` pieces (joined into one tool
  call, run by :class:`~callpipe.services.llm_service.LLMService`), ``thinking`` blocks stream
  ``thinking_delta``\\ s then one ``signature_delta`` (pushed as thought frames; the end frame
  carries the signature, and the thought is kept in an ``LLMContext`` so Claude gets it back
  with the tool calls it made while thinking);
- ``message_delta`` (``stop_reason`` and the cumulative ``usage``), ``message_stop``;
- ``error`` (``{"type": "error", "error": {"type", "message"}}``), e.g. ``overloaded_error``.

The context (Chat Completions messages) is converted by
:mod:`callpipe.adapters.llm.services.anthropic_adapter`. Settings (``model``, ``max_tokens``,
``temperature``, ``top_k``, ``top_p``, ``thinking``, ``effort``, ``enable_prompt_caching``,
``system_prompt_cache_ttl``, ``extra``) are read when each request is built, so an
``LLMUpdateSettingsFrame`` changes the next one. When neither ``thinking`` nor ``effort`` is
set (in the settings or ``extra``), the models Pipecat 1.14 lists get their lowest thinking
setting, for phone latency, unless ``use_provider_thinking_default`` is on; other models, and
every model with it on, think as Anthropic decides by default.

Errors: 401/403 are fatal (``ServiceAuthError`` at start-up, where ``GET /v1/models/{model}``
warms the connection and checks the key); 429 and 529 (overloaded) are retried while nothing
has been said, then reported as a non-fatal ``ErrorFrame``.

``run_inference`` sends the same body unstreamed (``"stream": false``) and returns the text
blocks joined; it pushes nothing, so it can run beside a streaming turn.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, Field

from callpipe.adapters.llm.services.anthropic_adapter import (
    LLM_ID,
    AnthropicCacheTTL,
    AnthropicLLMAdapter,
    convert_messages,
    convert_tool_choice,
    convert_tools,
    ensure_last_message_is_user,
    system_param,
    with_cache_breakpoints,
)
from callpipe.errors import CallpipeError, ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.metrics.metrics import LLMTokenUsage
from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import ANTHROPIC_BASE_URL_ENV, base_url
from callpipe.services._http import error_message
from callpipe.services._llm_stream import (
    PooledHTTPLLMService,
    _StreamError,
    context_messages,
    request_once_more_if_stale,
    status_error,
)
from callpipe.services.ai_service import ServiceAuthError, resolve_api_key
from callpipe.services.llm_service import ToolCall
from callpipe.services.settings import LLMSettings, store_from, unset
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

ANTHROPIC_URL = "https://api.anthropic.com"
"""The Anthropic SDK's own variable for another base URL (a proxy, a local fake)."""
ANTHROPIC_VERSION = "2023-06-01"
INTERLEAVED_THINKING_BETA = "interleaved-thinking-2025-05-14"
"""Lets Claude think between tool calls; sent (``anthropic-beta``) when thinking is on."""

OVERLOADED = 529
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": OVERLOADED,
}
"""An ``error`` event's ``error.type`` → the HTTP status the same error has before a stream."""

_THINKING_DEFAULTS: dict[str, dict[str, Any]] = {
    **{
        name: {"output_config": {"effort": "low"}}
        for name in ("claude-fable-5-1", "claude-fable-5", "claude-opus-5-5")
    },
    "claude-sonnet-5-5": {"thinking": {"type": "between_tools"}},
    **{
        name: {"thinking": {"type": "disabled"}}
        for name in (
            "claude-opus-5",
            "claude-sonnet-5",
            "claude-haiku-5-5",
            "claude-opus-4-8",
            "claude-opus-4-7",
            "claude-opus-4-6",
            "claude-sonnet-4-6",
            "claude-opus-4-5",
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
        )
    },
}
"""The lowest thinking setting per model (Pipecat 1.14's list), sent when neither ``thinking``
nor ``effort`` is configured and ``use_provider_thinking_default`` is off."""

PREFILL_MODELS = (
    "claude-2",
    "claude-instant",
    "claude-3",
    "claude-opus-4-0",
    "claude-opus-4-1",
    "claude-sonnet-4-0",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
)
"""Models that accept a request ending with an assistant turn; others get a ``"."`` user turn."""


def model_family(model: str) -> str:
    """``claude-sonnet-4-5`` for ``claude-sonnet-4-5-20250929``, ``...@20250929`` or a Bedrock
    id such as ``us.anthropic.claude-sonnet-4-5-20250929-v1:0``."""
    name = model.lower().rsplit(".", 1)[-1].split("@", 1)[0]
    name = re.sub(r"-v\d+:\d+$", "", name)
    return re.sub(r"-\d{8}$", "", name)


class AnthropicThinkingConfig(BaseModel):
    """Claude's ``thinking`` request field.

    ``type``: ``"adaptive"`` (the model decides), ``"enabled"`` (with ``budget_tokens``, older
    models), ``"disabled"``, or ``"between_tools"``. ``display``: ``"summarized"`` to get
    thinking text back, ``"omitted"`` for empty thinking blocks.
    """

    type: str
    budget_tokens: int | None = None
    display: str | None = None


@dataclass
class AnthropicLLMSettings(LLMSettings):
    """``AnthropicLLMService.Settings``: the common LLM settings plus Claude's own.

    ``enable_prompt_caching``: ``cache_control`` breakpoints on the system prompt and the last
    two user turns. ``system_prompt_cache_ttl``: ``"5m"`` (default) or ``"1h"`` for the system
    prompt's entry. ``thinking``: an :class:`AnthropicThinkingConfig` (or a dict). ``effort``:
    ``"low"`` … ``"max"``, sent as ``output_config.effort``. With neither set, the models in
    the module's table get their lowest thinking setting, unless
    ``use_provider_thinking_default`` is True. ``frequency_penalty``, ``presence_penalty`` and
    ``seed`` do not exist in the Messages API and are not sent.
    """

    enable_prompt_caching: bool | NotGiven = field(default_factory=unset)
    system_prompt_cache_ttl: AnthropicCacheTTL | None | NotGiven = field(default_factory=unset)
    thinking: AnthropicThinkingConfig | None | NotGiven = field(default_factory=unset)
    effort: str | None | NotGiven = field(default_factory=unset)

    _models: ClassVar[dict[str, type[BaseModel]]] = {"thinking": AnthropicThinkingConfig}


@dataclass
class _Block:
    """A content block being streamed."""

    kind: str
    tool_id: str = ""
    name: str = ""
    json: str = ""
    signature: str | None = None


class AnthropicLLMService(PooledHTTPLLMService):
    """Claude chat with streaming, tools, thinking and prompt caching (see the module docstring).

    Configure with ``settings=AnthropicLLMService.Settings(model=..., max_tokens=...,
    thinking=..., enable_prompt_caching=...)`` (Pipecat 1.14) or the older ``model=`` /
    ``params=InputParams(...)``; ``settings`` wins where both set a field. ``client`` (Pipecat's
    custom SDK client, e.g. for Bedrock or Vertex) is not supported: this service speaks HTTP
    to ``base_url`` itself.
    """

    Settings = AnthropicLLMSettings
    ThinkingConfig = AnthropicThinkingConfig
    adapter_class = AnthropicLLMAdapter
    supports_response_schema = True
    _settings: AnthropicLLMSettings

    class InputParams(BaseModel):
        """Request options (``None`` = Claude's default); the older form of ``settings=``."""

        enable_prompt_caching: bool | None = None
        max_tokens: int | None = Field(default=4096, ge=1)
        temperature: float | None = Field(default=None, ge=0.0, le=1.0)
        top_k: int | None = Field(default=None, ge=0)
        top_p: float | None = Field(default=None, ge=0.0, le=1.0)
        thinking: AnthropicThinkingConfig | None = None
        extra: dict[str, Any] | None = Field(default_factory=dict)

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        params: InputParams | None = None,
        settings: AnthropicLLMSettings | None = None,
        client: Any = None,
        base_url: str | None = None,
        request_timeout_secs: float = 30.0,
        max_retries: int = 1,
        retry_timeout_secs: float | None = 5.0,
        retry_on_timeout: bool | None = False,
        warmup: bool = True,
        **kwargs: Any,
    ) -> None:
        if client is not None:
            raise ConfigurationError(
                "AnthropicLLMService: client= (an Anthropic SDK client) is not supported; "
                "pass api_key= and, for a proxy, base_url="
            )
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model or "claude-sonnet-4-6", **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "ANTHROPIC_API_KEY")
        self._base_url = _base(base_url)
        p = params or AnthropicLLMService.InputParams()
        defaults = AnthropicLLMSettings(
            model=self.model_name,
            system_instruction=None,
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_k=p.top_k,
            top_p=p.top_p,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            enable_prompt_caching=bool(p.enable_prompt_caching),
            system_prompt_cache_ttl=None,
            thinking=p.thinking,
            effort=None,
            extra=dict(p.extra or {}),
        )
        self._settings = store_from(defaults, settings)
        self._timeout = request_timeout_secs
        self._max_retries = max_retries
        self._init_retry_on_timeout(retry_timeout_secs, retry_on_timeout)
        self._warmup = warmup
        self._client: httpx.AsyncClient | None = None
        self._adapter = self.adapter_class()

    def get_llm_adapter(self) -> AnthropicLLMAdapter:
        return self._adapter

    # ------------------------------------------------------------------ connection

    def _client_headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key, "anthropic-version": ANTHROPIC_VERSION}

    async def start(self, frame: StartFrame) -> None:
        response = await self._open_client(f"/v1/models/{self.model_name}")
        if response is not None and response.status_code in (401, 403):
            raise ServiceAuthError(
                f"{self}: Anthropic rejected the API key (HTTP {response.status_code}): "
                f"{error_message(response.status_code, response.content)}. "
                "Check api_key / ANTHROPIC_API_KEY."
            )

    # ------------------------------------------------------------------ request

    def _thinking_on(self, body: Mapping[str, Any]) -> bool:
        thinking = body.get("thinking")
        return isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled")

    async def set_prompt_caching(self, enable: bool) -> bool:
        """An ``LLMEnablePromptCachingFrame`` sets ``enable_prompt_caching`` (next request)."""
        await self.update_settings(self.Settings(enable_prompt_caching=enable))
        return True

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        """The ``/v1/messages`` body for ``context`` (public for tests and debugging);
        ``system_instruction`` replaces the configured one (:meth:`run_inference`)."""
        settings = self._settings
        messages = context_messages(
            context, LLM_ID, instruction=system_instruction or settings.system_instruction
        )
        system, converted = convert_messages(messages)
        if not converted:
            # Only instructions so far (the bot speaks first): Claude needs a turn to answer.
            converted = [{"role": "user", "content": [{"type": "text", "text": system or "."}]}]
            system = None
        if not (self.model_name or "").startswith(PREFILL_MODELS):
            ensure_last_message_is_user(converted)
        caching = settings.enable_prompt_caching is True
        ttl = settings.system_prompt_cache_ttl
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": _given(settings.max_tokens) or 4096,
            "messages": with_cache_breakpoints(converted) if caching else converted,
            "stream": True,
        }
        if system:
            body["system"] = system_param(
                system, caching=caching, ttl=ttl if is_given(ttl) else None
            )
        tools = convert_tools(context.tools_for_api())
        if tools:
            body["tools"] = tools
            choice = convert_tool_choice(context.tool_choice_for_api())
            if choice is not None:
                body["tool_choice"] = choice
        for name in ("temperature", "top_k", "top_p"):
            value = _given(getattr(settings, name))
            if value is not None:
                body[name] = value
        thinking = _given(settings.thinking)
        if thinking is not None:
            body["thinking"] = thinking.model_dump(exclude_none=True)
        effort = _given(settings.effort)
        if effort:
            body["output_config"] = {"effort": effort}
        body.update(settings.extra)
        self._apply_thinking_default(body)
        return body

    def _apply_thinking_default(self, body: dict[str, Any]) -> None:
        """The model's lowest thinking setting, unless thinking or effort is configured or
        ``use_provider_thinking_default`` is on."""
        if "thinking" in body or "effort" in (body.get("output_config") or {}):
            return
        default = self._thinking_default_to_send(
            _THINKING_DEFAULTS.get(model_family(self.model_name or "")),
            provider="Anthropic",
            settings_fields="thinking or effort",
        )
        for key, value in (default or {}).items():
            if isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key] = {**body[key], **value}
            else:
                body[key] = dict(value) if isinstance(value, dict) else value

    def _headers(self, body: Mapping[str, Any]) -> dict[str, str]:
        return {"anthropic-beta": INTERLEAVED_THINKING_BETA} if self._thinking_on(body) else {}

    # ------------------------------------------------------------------ out of band

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """One completion outside the pipeline (see ``LLMService.run_inference``), unstreamed.

        Thinking blocks are left out of the text; a kept-alive connection the server had just
        closed is retried once. Raises ``ServiceAuthError`` for a rejected key and
        ``CallpipeError`` for any other failure.
        """
        await self.wait_ready()
        self._ensure_client()
        assert self._client is not None
        body = self.build_request(context, system_instruction=system_instruction)
        body["stream"] = False
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        schema = self._check_response_schema(response_schema)
        if schema is not None:
            output = dict(body.get("output_config") or {})
            output["format"] = {"type": "json_schema", "schema": schema}
            body["output_config"] = output
        client = self._client
        response = await request_once_more_if_stale(
            self, lambda: client.post("/v1/messages", json=body, headers=self._headers(body))
        )
        if response.status_code != 200:
            raise self._inference_error(response.status_code, response.content, "Anthropic")
        try:
            data = response.json()
        except ValueError as exc:
            raise CallpipeError(f"{self}: Anthropic answered with something not JSON") from exc
        blocks = data.get("content") if isinstance(data, dict) else None
        text = "".join(
            str(block.get("text") or "")
            for block in blocks or ()
            if isinstance(block, dict) and block.get("type") == "text"
        )
        return text or None

    # ------------------------------------------------------------------ streaming

    async def _stream_once(self, body: dict[str, Any], produced: list[bool]) -> list[ToolCall]:
        assert self._client is not None
        self.reset_ttfb_metrics()
        self.start_ttfb_metrics()
        state = _Turn()
        async with self._client.stream(
            "POST", "/v1/messages", json=body, headers=self._headers(body)
        ) as response:
            if response.status_code != 200:
                raise await status_error(response, "Anthropic")
            async for line in response.aiter_lines():
                # Each event's data carries its own ``type``; the ``event:`` lines repeat it.
                if not line.startswith("data:"):
                    continue
                try:
                    event = json.loads(line[5:].strip())
                except ValueError:
                    logger.warning("%s: skipping a malformed stream line", self)
                    continue
                if isinstance(event, dict):
                    await self._handle_event(event, state, produced)
                if state.stopped:
                    break
        if state.usage and self.usage_metrics_enabled:
            await self.start_llm_usage_metrics(anthropic_token_usage(state.usage))
        if state.stop_reason not in (None, "end_turn", "tool_use", "stop_sequence"):
            logger.warning("%s: the answer stopped early: %s", self, state.stop_reason)
        return state.calls

    async def _handle_event(
        self, event: dict[str, Any], state: _Turn, produced: list[bool]
    ) -> None:
        kind = event.get("type")
        if kind in ("content_block_start", "content_block_delta"):
            await self._first_output(produced)
        if kind == "content_block_delta":
            await self._on_delta(event, state)
        elif kind == "content_block_start":
            await self._on_block_start(event, state)
        elif kind == "content_block_stop":
            block = state.blocks.pop(int(event.get("index", -1)), None)
            if block is None:
                return
            if block.kind == "thinking":
                await self.end_thought(block.signature)
            elif block.kind == "tool_use":
                state.calls.append(
                    ToolCall(id=block.tool_id, name=block.name, arguments=block.json or "{}")
                )
        elif kind == "message_start":
            usage = (event.get("message") or {}).get("usage")
            if isinstance(usage, dict):
                state.usage.update({k: v for k, v in usage.items() if v is not None})
        elif kind == "message_delta":
            usage = event.get("usage")
            if isinstance(usage, dict):
                # Cumulative counts: each replaces the one before; a missing one keeps it.
                state.usage.update({k: v for k, v in usage.items() if v is not None})
            state.stop_reason = (event.get("delta") or {}).get("stop_reason")
        elif kind == "message_stop":
            state.stopped = True
        elif kind == "error":
            error = event.get("error") or {}
            error_type = str(error.get("type") or "api_error")
            status = _ERROR_STATUS.get(error_type, 500)
            retryable = status in (429, OVERLOADED) or status >= 500
            message = f"{error_type} in stream: {error.get('message') or 'no message'}"
            raise _StreamError(status, message, 0.5 if retryable else None)

    async def _on_block_start(self, event: dict[str, Any], state: _Turn) -> None:
        block = event.get("content_block") or {}
        kind = str(block.get("type") or "")
        index = int(event.get("index", len(state.blocks)))
        state.blocks[index] = _Block(
            kind=kind, tool_id=str(block.get("id") or ""), name=str(block.get("name") or "")
        )
        if kind == "thinking":
            # Each thinking block is a thought of its own, signed at its end.
            await self.end_thought()
            await self._push_thinking(str(block.get("thinking") or ""))
        elif kind == "text":
            await self.end_thought()
            if block.get("text"):
                await self.push_llm_text(str(block["text"]))
        elif kind == "tool_use":
            await self.end_thought()
            await self.tool_call_began()

    async def _on_delta(self, event: dict[str, Any], state: _Turn) -> None:
        delta = event.get("delta") or {}
        block = state.blocks.get(int(event.get("index", -1)))
        kind = delta.get("type")
        if kind == "text_delta":
            if delta.get("text"):
                await self.push_llm_text(str(delta["text"]))
        elif kind == "input_json_delta":
            if block is not None:
                block.json += str(delta.get("partial_json") or "")
        elif kind == "thinking_delta":
            if delta.get("thinking"):
                await self._push_thinking(str(delta["thinking"]))
        elif kind == "signature_delta":
            if block is not None:
                block.signature = str(delta.get("signature") or "") or None

    async def _push_thinking(self, text: str) -> None:
        """Claude's thinking, kept in the context so it goes back signed with the tool calls."""
        await self.push_thought(text, append_to_context=True, llm=LLM_ID)


@dataclass
class _Turn:
    """What one streamed message has produced so far."""

    blocks: dict[int, _Block] = field(default_factory=dict)
    calls: list[ToolCall] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    stopped: bool = False


def _given(value: Any) -> Any:
    """``value``, or None when it is ``NOT_GIVEN``."""
    return value if is_given(value) else None


def _base(explicit: str | None) -> str:
    return base_url(explicit, ANTHROPIC_BASE_URL_ENV, ANTHROPIC_URL)


def anthropic_token_usage(usage: Mapping[str, Any]) -> LLMTokenUsage:
    """A Messages API ``usage`` object as :class:`LLMTokenUsage`.

    Claude's ``input_tokens`` leaves out the cached part of the prompt
    (``cache_read_input_tokens``, ``cache_creation_input_tokens``), so the total adds them back,
    to mean what it means for other providers. ``output_tokens`` includes thinking
    (``output_tokens_details.thinking_tokens``).
    """
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    read = usage.get("cache_read_input_tokens")
    created = usage.get("cache_creation_input_tokens")
    details = usage.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
    return LLMTokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion + int(read or 0) + int(created or 0),
        cache_read_input_tokens=int(read) if isinstance(read, int) else None,
        cache_creation_input_tokens=int(created) if isinstance(created, int) else None,
        reasoning_tokens=int(thinking) if isinstance(thinking, int) else None,
    )


__all__ = [
    "AnthropicLLMService",
    "AnthropicLLMSettings",
    "AnthropicThinkingConfig",
    "anthropic_token_usage",
]
