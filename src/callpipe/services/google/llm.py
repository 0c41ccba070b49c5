"""GoogleLLMService: Gemini over its REST API, streamed (``streamGenerateContent?alt=sse``).

httpx against ``{base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse`` with the key in
``x-goog-api-key``; no Google SDK at run time. The conversation is the same context the OpenAI
service uses (Chat Completions messages); :mod:`callpipe.services.google._gemini` turns it into
Gemini ``contents``, ``systemInstruction``, ``tools`` and ``toolConfig``.

Each SSE event is a ``GenerateContentResponse``: text parts become ``LLMTextFrame``\\ s as they
arrive (``thought`` parts, sent with ``include_thoughts``, become LLM thought frames: start,
text, end per part), ``functionCall`` parts become tool calls run by
:class:`~callpipe.services.llm_service.LLMService` (their ``thoughtSignature`` is kept and sent
back with the call, as thinking models require), ``usageMetadata`` becomes usage metrics.
Start-up warms the connection with ``GET /v1beta/models/{model}`` so a rejected key is reported
at start. For phone latency, a request that configures no ``thinkingConfig`` (in the settings
or ``extra``) gives the models Pipecat 1.14 lists their lowest thinking setting
(``thinkingBudget: 0`` on 2.5 Flash, ``thinkingLevel: MINIMAL`` or ``LOW`` on later models),
unless ``use_provider_thinking_default`` is on; other models, and every model with it on, think
as Google decides by default.

Sampling, thinking, safety filters and the system instruction live in
``GoogleLLMService.Settings`` (Pipecat 1.14's ``GoogleLLMSettings``) and are read when each
request is built, so an ``LLMUpdateSettingsFrame`` changes the next request. They go on the
wire as Gemini's REST names: ``generationConfig`` (``temperature``, ``topP``, ``topK``,
``maxOutputTokens``, ``seed``, ``thinkingConfig``), ``safetySettings`` and ``systemInstruction``.
``extra`` is applied last, as Pipecat applies it to its ``GenerateContentConfig``: its keys may be
that config's snake_case names or Gemini's camelCase ones; request-level keys
(``safety_settings``, ``cached_content``...) go on the body, the rest into ``generationConfig``.

``run_inference`` (one completion outside the pipeline, e.g. a context summary) sends the
same body as a turn to ``:generateContent``, unstreamed, through the same client and
connection pool, and returns the text parts joined. It pushes nothing, so it can run beside a
streaming turn.

Pipecat 1.14's client options: ``http_options`` (the SDK's ``HttpOptions``, or a dict) gives
``base_url``, ``api_version``, ``headers`` (sent with every request) and ``timeout``
(milliseconds, the request timeout), where the matching argument is not given; its other fields
are ignored, with a warning. ``stream_idle_timeout_secs`` bounds the wait for each chunk of a
streamed answer (the first one included); None, the default, keeps ``request_timeout_secs``
(Pipecat's ``None`` waits forever, which a call cannot).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from callpipe.errors import CallpipeError, ConfigurationError
from callpipe.frames.frames import (
    StartFrame,
)
from callpipe.metrics.metrics import LLMTokenUsage
from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import GEMINI_URL_ENV, base_url
from callpipe.services._http import error_message
from callpipe.services._llm_stream import (
    PooledHTTPLLMService,
    _StreamError,
    request_once_more_if_stale,
    status_error,
)
from callpipe.services.ai_service import ServiceAuthError, resolve_api_key, warn_ignored_option
from callpipe.services.google._gemini import (
    GENERATED_ID_PREFIX,
    convert_messages,
    convert_tool_choice,
    convert_tools,
    usage_counts,
)
from callpipe.services.llm_service import ToolCall
from callpipe.services.settings import LLMSettings, store_from, unset
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

GEMINI_URL = "https://generativelanguage.googleapis.com"
_THINKING_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemini-2.5-flash": {"thinking_budget": 0},
    "gemini-2.5-flash-lite": {"thinking_budget": 0},
    "gemini-2.5-pro": {"thinking_budget": 128},
    **{
        name: {"thinking_level": "minimal"}
        for name in (
            "gemini-3-flash-preview",
            "gemini-3.1-flash-lite",
            "gemini-3.5-flash",
            "gemini-3.5-flash-lite",
            "gemini-3.6-flash",
            "gemma-4-26b-a4b-it",
            "gemma-4-31b-it",
        )
    },
    **{
        name: {"thinking_level": "low"}
        for name in (
            "gemini-3.1-pro-preview",
            "gemini-3.1-pro-preview-customtools",
            "gemini-3.7-flash",
            "gemini-3.8-flash",
            "gemini-4-argon",
        )
    },
}
"""The lowest thinking setting per model (Pipecat 1.14's list), as ``ThinkingConfig`` fields,
sent when no ``thinkingConfig`` is configured and ``use_provider_thinking_default`` is off.
Looked up by :func:`_model_name`: exact names only, so aliases (``gemini-flash-latest``) and
preview snapshots of other names get Google's default."""

_REQUEST_KEYS = frozenset(
    {
        "systemInstruction",
        "safetySettings",
        "tools",
        "toolConfig",
        "cachedContent",
        "labels",
        "serviceTier",
        "store",
    }
)
"""``extra`` keys that belong on the request body, not in ``generationConfig`` (as the SDK
routes its ``GenerateContentConfig``)."""


class GoogleThinkingConfig(BaseModel):
    """How much the model thinks before answering (``thinkingConfig``).

    Gemini 2.5 models take ``thinking_budget`` (0: off, -1: the model decides); Gemini 3 and
    later take ``thinking_level`` (``"minimal"``, ``"low"``, ``"medium"``, ``"high"``).
    """

    thinking_budget: int | None = None
    thinking_level: str | None = None
    include_thoughts: bool | None = None


@dataclass
class GoogleLLMSettings(LLMSettings):
    """``GoogleLLMService.Settings``: the common LLM settings plus Gemini's own.

    ``thinking``: a :class:`GoogleThinkingConfig` (or the SDK's ``ThinkingConfig``, or a dict);
    None sends no ``thinkingConfig`` of its own: the models in the module's table then get their
    lowest thinking setting (``thinkingBudget: 0`` on 2.5 Flash), unless
    ``use_provider_thinking_default`` is True.
    ``safety_settings``: a list of ``{"category": ..., "threshold": ...}`` dicts or the SDK's
    ``SafetySetting`` objects; None keeps Gemini's default filters.
    ``frequency_penalty`` / ``presence_penalty`` are not sent (as in Pipecat; use ``extra``).
    """

    thinking: GoogleThinkingConfig | None | NotGiven = field(default_factory=unset)
    safety_settings: list[Any] | None | NotGiven = field(default_factory=unset)

    _models: ClassVar[dict[str, type[BaseModel]]] = {"thinking": GoogleThinkingConfig}


class GoogleLLMService(PooledHTTPLLMService):
    """Gemini chat over REST with streaming and function calling (see the module docstring).

    Configure with ``settings=GoogleLLMService.Settings(model=..., temperature=...,
    thinking=..., safety_settings=...)`` (Pipecat 1.14) or the older ``model=`` /
    ``system_instruction=`` / ``params=InputParams(...)``; ``settings`` wins where both set a
    field. ``LLMUpdateSettingsFrame(delta=GoogleLLMService.Settings(...))`` changes them for the
    next request.

    With ``retry_on_timeout``, a request that has streamed no text or function call
    ``retry_timeout_secs`` after it was sent is sent again once (see
    :mod:`callpipe.services._llm_stream`).
    """

    Settings = GoogleLLMSettings
    supports_response_schema = True
    _settings: GoogleLLMSettings
    ThinkingConfig = GoogleThinkingConfig

    class InputParams(BaseModel):
        """``generationConfig`` options (``None`` = Gemini's default); the older form of
        ``settings=``."""

        model_config = ConfigDict(extra="forbid")

        max_tokens: int | None = Field(default=4096, ge=1)
        temperature: float | None = Field(default=None, ge=0.0, le=2.0)
        top_k: int | None = Field(default=None, ge=0)
        top_p: float | None = Field(default=None, ge=0.0, le=1.0)
        thinking: GoogleThinkingConfig | None = None
        thinking_budget: int | None = None
        """Shorthand for ``thinking=ThinkingConfig(thinking_budget=...)`` (``thinking`` wins).
        Neither set: the model's lowest setting where the module's table lists one (0 on 2.5
        Flash: no thinking delay on a call), else the model's default."""
        extra: dict[str, Any] | None = Field(default_factory=dict)
        """Extra ``GenerateContentConfig`` fields (snake_case or Gemini's camelCase)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        params: InputParams | None = None,
        settings: GoogleLLMSettings | None = None,
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
        http_options: Any = None,
        stream_idle_timeout_secs: float | None = None,
        **kwargs: Any,
    ) -> None:
        options = _http_options(http_options)
        base_url = base_url or options.pop("base_url", None)
        api_version = options.pop("api_version", None) or api_version
        headers = options.pop("headers", None) or {}
        timeout_ms = options.pop("timeout", None)
        if timeout_ms and request_timeout_secs == 30.0:
            request_timeout_secs = float(timeout_ms) / 1000.0
        if stream_idle_timeout_secs is not None and stream_idle_timeout_secs <= 0:
            raise ConfigurationError(f"{type(self).__name__}: stream_idle_timeout_secs must be > 0")
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model or "gemini-2.5-flash", **kwargs)
        key = api_key or os.environ.get("GEMINI_API_KEY") or None
        self._api_key: str = resolve_api_key(type(self).__name__, key, "GOOGLE_API_KEY")
        self._base_url = _base(base_url)
        self._api_version = api_version
        p = params or GoogleLLMService.InputParams()
        thinking = p.thinking
        if thinking is None and p.thinking_budget is not None:
            thinking = GoogleThinkingConfig(thinking_budget=p.thinking_budget)
        defaults = GoogleLLMSettings(
            model=self.model_name,
            system_instruction=system_instruction,
            temperature=p.temperature,
            max_tokens=p.max_tokens,
            top_p=p.top_p,
            top_k=p.top_k,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            thinking=thinking,
            safety_settings=None,
            extra=dict(p.extra or {}),
        )
        self._settings = store_from(defaults, settings)
        self._tools = tools
        self._tool_config = tool_config
        self._timeout = request_timeout_secs
        self._max_retries = max_retries
        self._init_retry_on_timeout(retry_timeout_secs, retry_on_timeout)
        self._warmup = warmup
        self._extra_headers = {str(k): str(v) for k, v in headers.items()}
        self._stream_idle_timeout = stream_idle_timeout_secs
        for name in sorted(options):
            warn_ignored_option(self, f"http_options.{name}", "requests go through httpx")
        self._client: httpx.AsyncClient | None = None
        self._signatures: dict[str, str] = {}
        """Tool call id → the ``thoughtSignature`` Gemini sent with the call."""
        self._call_counter = 0

    # ------------------------------------------------------------------ connection

    def _client_headers(self) -> dict[str, str]:
        return {**self._extra_headers, "x-goog-api-key": self._api_key}

    def _make_client(self) -> httpx.AsyncClient:
        client = super()._make_client()
        if self._stream_idle_timeout is not None:
            # httpx's read timeout bounds each read: the wait for the next chunk.
            client.timeout = httpx.Timeout(
                self._timeout, connect=5.0, read=self._stream_idle_timeout
            )
        return client

    async def start(self, frame: StartFrame) -> None:
        response = await self._open_client(f"/{self._api_version}/models/{self.model_name}")
        if response is None:
            return
        if response.status_code in (401, 403) or (
            response.status_code == 400 and b"API_KEY" in response.content
        ):
            raise ServiceAuthError(
                f"{self}: Gemini rejected the API key (HTTP {response.status_code}): "
                f"{error_message(response.status_code, response.content)}. "
                "Check api_key / GOOGLE_API_KEY."
            )

    # ------------------------------------------------------------------ request

    def _generation_config(self) -> dict[str, Any]:
        settings = self._settings
        config: dict[str, Any] = {}
        for name, wire in (
            ("temperature", "temperature"),
            ("top_p", "topP"),
            ("top_k", "topK"),
            ("max_tokens", "maxOutputTokens"),
            ("seed", "seed"),
        ):
            value = getattr(settings, name)
            if is_given(value) and value is not None:
                config[wire] = value
        thinking = settings.thinking
        if is_given(thinking) and thinking is not None:
            config["thinkingConfig"] = _thinking_wire(thinking)
        return config

    def _thinking_default(self) -> dict[str, Any] | None:
        """The ``thinkingConfig`` sent when none is configured (in settings or ``extra``): the
        model's lowest setting, or None (for a model not listed, or with
        ``use_provider_thinking_default`` on)."""
        default = self._thinking_default_to_send(
            _THINKING_DEFAULTS.get(_model_name(self.model_name or "")),
            provider="Google",
            settings_fields="thinking",
        )
        return _thinking_wire(default) if default is not None else None

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        """The ``generateContent`` body for ``context`` (public for tests and debugging);
        ``system_instruction`` replaces the configured one (:meth:`run_inference`)."""
        settings = self._settings
        messages = context.messages_for_api()
        instruction = system_instruction or settings.system_instruction
        if isinstance(instruction, str) and instruction:
            messages = [{"role": "system", "content": instruction}, *messages]
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
        safety = settings.safety_settings
        if is_given(safety) and safety is not None:
            body["safetySettings"] = [_safety_wire(entry) for entry in safety]
        config = self._generation_config()
        _merge_extra(body, config, settings.extra)
        if "thinkingConfig" not in config:
            default = self._thinking_default()
            if default is not None:
                config["thinkingConfig"] = default
        if config:
            body["generationConfig"] = config
        return body

    # ------------------------------------------------------------------ completion

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """One completion outside the pipeline (see ``LLMService.run_inference``), unstreamed.

        The tools sent are the context's own (not the service's ``tools=``); thought parts are
        left out of the text. A kept-alive connection the server had just
        closed is retried once. Raises ``ServiceAuthError`` for a rejected key and
        ``CallpipeError`` for any other failure.
        """
        await self.wait_ready()
        self._ensure_client()
        assert self._client is not None
        body = self.build_request(context, system_instruction=system_instruction)
        if not _tools_of(context)[0]:
            # Only the context's own tools: the service's default ``tools=`` are for turns, and
            # a summary request answered with a function call would have no text.
            body.pop("tools", None)
            body.pop("toolConfig", None)
        config: dict[str, Any] = dict(body.get("generationConfig") or {})
        if max_tokens is not None:
            config["maxOutputTokens"] = max_tokens
        schema = self._check_response_schema(response_schema)
        if schema is not None:
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = schema
        if config:
            body["generationConfig"] = config
        path = f"/{self._api_version}/models/{self.model_name}:generateContent"
        client = self._client
        response = await request_once_more_if_stale(self, lambda: client.post(path, json=body))
        if response.status_code != 200:
            raise self._inference_error(response.status_code, response.content, "Gemini")
        try:
            data = response.json()
        except ValueError as exc:
            raise CallpipeError(f"{self}: Gemini answered with something that is not JSON") from exc
        candidates = data.get("candidates") if isinstance(data, dict) else None
        if not candidates:
            return None
        parts = (candidates[0].get("content") or {}).get("parts") or ()
        text = "".join(
            str(part.get("text") or "")
            for part in parts
            if isinstance(part, dict) and not part.get("thought")
        )
        return text or None

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
                raise await status_error(response, "Gemini")
            usage: dict[str, Any] | None = None
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                chunk = self.stream_event(line[5:].strip())
                if chunk is None:
                    continue
                if isinstance(chunk.get("usageMetadata"), dict):
                    usage = chunk["usageMetadata"]
                await self._handle_chunk(chunk, calls, produced)
        if usage is not None and self.usage_metrics_enabled:
            await self.start_llm_usage_metrics(gemini_token_usage(usage))
        return calls

    async def _handle_chunk(
        self, chunk: dict[str, Any], calls: list[ToolCall], produced: list[bool]
    ) -> None:
        candidates = chunk.get("candidates") or []
        if not candidates:
            return
        content = candidates[0].get("content") or {}
        for part in content.get("parts") or ():
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            function_call = part.get("functionCall")
            if text or function_call:
                await self._first_output(produced)
            if part.get("thought"):
                # Sent only with include_thoughts; each part is a whole thought summary.
                if text:
                    await self.push_thought(str(text))
                    await self.end_thought(part.get("thoughtSignature"))
                continue
            if isinstance(function_call, dict) and function_call.get("name"):
                call_id = function_call.get("id")
                if not call_id:
                    self._call_counter += 1
                    call_id = f"{GENERATED_ID_PREFIX}{self._call_counter}"
                if part.get("thoughtSignature"):
                    self._signatures[str(call_id)] = str(part["thoughtSignature"])
                arguments = json.dumps(function_call.get("args") or {})
                await self.tool_call_began()
                calls.append(
                    ToolCall(id=str(call_id), name=function_call["name"], arguments=arguments)
                )
            elif text:
                await self.push_llm_text(str(text))


def _model_name(model: str) -> str:
    """The name ``model`` refers to: ``gemini-2.5-flash`` for ``models/gemini-2.5-flash``,
    ``publishers/google/models/gemini-2.5-flash`` or the version ``gemini-2.5-flash-001``."""
    return re.sub(r"-\d{3}$", "", model.lower().rsplit("/", 1)[-1])


def _tools_of(context: ChatContext) -> tuple[list[dict[str, Any]] | None, Any]:
    """The context's tools (Chat Completions format) and tool choice, from either kind of
    context (the older ``OpenAILLMContext`` or 1.14's ``LLMContext``)."""
    return context.tools_for_api(), context.tool_choice_for_api()


def _camel(key: str) -> str:
    """``max_output_tokens`` → ``maxOutputTokens`` (camelCase keys are left as they are)."""
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _plain(value: Any) -> dict[str, Any]:
    """A config object (dict, pydantic model, e.g. the SDK's types) as a dict of set fields."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items() if v is not None}
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    raise TypeError(f"expected a dict or a pydantic model, got {type(value).__name__}")


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _thinking_wire(thinking: Any) -> dict[str, Any]:
    """``thinkingConfig`` for a thinking config; levels are upper case on the wire."""
    wire = {_camel(k): _enum_value(v) for k, v in _plain(thinking).items()}
    level = wire.get("thinkingLevel")
    if isinstance(level, str):
        wire["thinkingLevel"] = level.upper()
    return wire


def _safety_wire(entry: Any) -> dict[str, Any]:
    """One ``safetySettings`` entry; enum values (the SDK's) are sent as their names."""
    wire = {_camel(k): _enum_value(v) for k, v in _plain(entry).items()}
    for key in ("category", "threshold"):
        if isinstance(wire.get(key), str):
            wire[key] = wire[key].upper()
    return wire


def _merge_extra(body: dict[str, Any], config: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Apply ``extra`` over the built request, as Pipecat updates its generation params with
    it: ``GenerateContentConfig`` keys (snake_case or camelCase) win over the settings."""
    for key, value in extra.items():
        wire = _camel(key)
        if wire == "thinkingConfig" and value is not None:
            value = _thinking_wire(value)
        elif wire == "safetySettings" and value is not None:
            value = [_safety_wire(entry) for entry in value]
        elif wire == "systemInstruction" and isinstance(value, str):
            value = {"parts": [{"text": value}]}
        target = body if wire in _REQUEST_KEYS else config
        if value is None:
            target.pop(wire, None)
        else:
            target[wire] = value


def _http_options(options: Any) -> dict[str, Any]:
    """The set fields of Pipecat's ``http_options`` (the SDK's ``HttpOptions`` or a dict)."""
    if options is None:
        return {}
    if isinstance(options, Mapping):
        raw = dict(options)
    elif hasattr(options, "model_dump"):
        raw = options.model_dump(exclude_none=True)
    else:
        raw = {k: v for k, v in vars(options).items() if not k.startswith("_")}
    return {k: v for k, v in raw.items() if v is not None}


def _base(explicit: str | None) -> str:
    return base_url(explicit, GEMINI_URL_ENV, GEMINI_URL)


def gemini_token_usage(usage: dict[str, Any]) -> LLMTokenUsage:
    """A Gemini ``usageMetadata`` object as :class:`LLMTokenUsage`.

    Thinking is counted in the completion with ``candidatesTokenCount`` and tool results fed
    back in the prompt (see :func:`~callpipe.services.google._gemini.usage_counts`).
    ``cachedContentTokenCount`` is the part of the prompt served from the context cache.
    """
    prompt, completion, reasoning = usage_counts(usage, "candidatesTokenCount")
    cached = usage.get("cachedContentTokenCount")
    return LLMTokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(usage.get("totalTokenCount") or prompt + completion),
        cache_read_input_tokens=int(cached) if isinstance(cached, int | float) else None,
        reasoning_tokens=reasoning,
    )
