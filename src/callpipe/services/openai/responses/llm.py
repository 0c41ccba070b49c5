"""OpenAIResponsesLLMService: OpenAI's Responses API, streamed over httpx (no OpenAI SDK).

Wire format (https://platform.openai.com/docs/api-reference/responses): ``POST
{base_url}/responses`` with a bearer key and a JSON body of ``model``, ``"stream": true``,
``"store": false`` (nothing is kept on OpenAI's side), ``input`` items, ``instructions``,
``tools`` / ``tool_choice``, ``temperature``, ``top_p``, ``max_output_tokens``,
``service_tier`` and ``reasoning`` (``effort``, ``summary``, ``mode``). The context is converted
by :mod:`callpipe.adapters.llm.services.open_ai_responses_adapter`.

The answer is Server-Sent Events, each ``data: {json}`` carrying its ``type``:

- ``response.created`` / ``response.in_progress``: the response has begun;
- ``response.output_text.delta``: a piece of the answer, pushed as an ``LLMTextFrame``;
- ``response.reasoning_summary_text.delta``: a piece of a reasoning model's summary, pushed as
  thought frames (closed at the reasoning item's ``response.output_item.done``). When
  ``reasoning`` is configured the request asks for ``reasoning.encrypted_content``; the
  reasoning items of a completed response are then added to an ``LLMContext`` (as messages for
  ``"openai_responses"``) and go back with the next request, as ``store: false`` requires for
  the model to see its earlier reasoning;
- ``response.output_item.added`` with a ``function_call`` item, then its
  ``response.function_call_arguments.delta``\\ s and ``.done``, then
  ``response.output_item.done``: one tool call, run by
  :class:`~callpipe.services.llm_service.LLMService`; its result goes back in the next request
  as a ``function_call_output`` item;
- ``response.completed``: the whole response with its ``usage`` (input, output, cached and
  reasoning tokens) → usage metrics;
- ``response.incomplete`` (cut short, e.g. by ``max_output_tokens``): reported as a non-fatal
  error; ``response.failed`` and ``error``: handled as an HTTP error of the same kind (retried
  while nothing has been said when the server was at fault or busy).

Errors: 401/403 are fatal (``ServiceAuthError`` at start, where ``GET {base_url}/models`` warms
the connection and checks the key); 429 and 5xx are retried while nothing has been said
(:mod:`callpipe.services._llm_stream`). An interruption closes the HTTP stream.

With no ``reasoning`` configured (in ``Settings`` or ``extra``), the models Pipecat 1.14 lists
are sent their lowest reasoning effort, for phone latency, unless
``use_provider_thinking_default`` is on; other models, and every model with it on, reason as
OpenAI decides by default.

``run_inference`` sends the same request (streamed, as turns are) and joins the text; it pushes
nothing, so it can run beside a streaming turn.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from callpipe.adapters.llm.services.open_ai_responses_adapter import (
    LLM_ID,
    OpenAIResponsesLLMAdapter,
    convert_tool_choice,
    invocation_params,
)
from callpipe.errors import CallpipeError
from callpipe.frames.frames import StartFrame
from callpipe.metrics.metrics import LLMTokenUsage
from callpipe.processors.aggregators.llm_context import (
    ChatContext,
    LLMContext,
    LLMSpecificMessage,
)
from callpipe.services._llm_stream import (
    StreamingHTTPLLMService,
    _StreamError,
    context_messages,
    read_to_end,
    request_once_more_if_stale,
    status_error,
)
from callpipe.services.llm_service import ToolCall
from callpipe.services.openai._client import OpenAIHTTPMixin
from callpipe.services.settings import LLMSettings, store_from, unset
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

DEFAULT_WS_URL = "wss://api.openai.com/v1/responses"
ENCRYPTED_REASONING = "reasoning.encrypted_content"

_LOWEST_EFFORT: dict[str, str] = {
    "gpt-5": "minimal",
    "gpt-5-mini": "minimal",
    "gpt-5-nano": "minimal",
    "gpt-5-pro": "high",
    "gpt-5.1": "none",
    "gpt-5.2": "none",
    "gpt-5.2-pro": "medium",
    "gpt-5.4": "none",
    "gpt-5.4-mini": "none",
    "gpt-5.4-nano": "none",
    "gpt-5.4-pro": "medium",
    "gpt-5.5": "none",
    "gpt-5.5-pro": "medium",
    "gpt-5.6-luna": "none",
    "gpt-5.6-sol": "none",
    "gpt-5.6-terra": "none",
    "gpt-6-astra": "low",
    "gpt-6-luna": "none",
    "gpt-6-sol": "none",
    "gpt-6.1-sol": "low",
    "o1": "low",
    "o1-pro": "low",
    "o3": "low",
    "o3-mini": "low",
    "o3-pro": "low",
    "o4-mini": "low",
}
"""The lowest reasoning effort OpenAI documents per model (as Pipecat 1.14 lists them), sent
when no ``reasoning`` is configured and ``use_provider_thinking_default`` is off."""

_RETRYABLE_CODES = {"server_error": 500, "rate_limit_exceeded": 429}
"""``error.code``\\ s of a failed response worth sending again, as the HTTP status they mean."""


class OpenAIResponsesReasoningConfig(BaseModel):
    """The ``reasoning`` request field, for reasoning models (gpt-5 onward, the o-series).

    ``effort``: ``"none"``, ``"minimal"``, ``"low"``, ``"medium"``, ``"high"``, ``"xhigh"`` or
    ``"max"`` (which ones a model takes is OpenAI's business); ``summary``: ``"auto"``,
    ``"concise"`` or ``"detailed"`` to have the reasoning summarised (streamed as thought
    frames); ``mode``: ``"standard"`` or ``"pro"`` where the model offers it. ``None`` leaves a
    field out, so the model's default applies.
    """

    effort: str | None = None
    summary: str | None = None
    mode: str | None = None


@dataclass
class OpenAIResponsesLLMSettings(LLMSettings):
    """``OpenAIResponsesLLMService.Settings``: the common LLM settings plus
    ``max_completion_tokens`` (sent as ``max_output_tokens``; the common ``max_tokens`` is used
    when it is unset) and ``reasoning`` (an :class:`OpenAIResponsesReasoningConfig` or a dict;
    unset, the models in the module's table get their lowest effort unless
    ``use_provider_thinking_default`` is True). ``top_k``, ``frequency_penalty``,
    ``presence_penalty`` and ``seed`` do not exist in the Responses API and are not sent."""

    max_completion_tokens: int | None | NotGiven = field(default_factory=unset)
    reasoning: OpenAIResponsesReasoningConfig | None | NotGiven = field(default_factory=unset)

    _models: ClassVar[dict[str, type[BaseModel]]] = {"reasoning": OpenAIResponsesReasoningConfig}


def _model_key(model: str) -> str:
    """The model a dated snapshot (``gpt-5-2025-08-07``) belongs to."""
    return re.sub(r"-\d{4}-\d{2}-\d{2}$", "", model.lower())


def _given(value: Any) -> Any:
    """``value``, or None when it is ``NOT_GIVEN``."""
    return value if is_given(value) else None


def _event(line: str) -> dict[str, Any] | None:
    """The JSON object of one ``data:`` line; None for any other line or a malformed one."""
    if not line.startswith("data:"):
        return None
    try:
        event = json.loads(line[5:].strip())
    except ValueError:
        logger.warning("skipping a malformed Responses stream line")
        return None
    return event if isinstance(event, dict) else None


def _error_of(event: Mapping[str, Any]) -> tuple[str, str]:
    """``(code, message)`` of an ``error`` event or a failed response's ``error``."""
    error = event.get("error")
    source = error if isinstance(error, dict) else event
    code = str(source.get("code") or source.get("type") or "")
    message = str(source.get("message") or "no message")
    return code, message


def _stream_error(code: str, message: str, what: str) -> _StreamError:
    status = _RETRYABLE_CODES.get(code)
    if status is not None:
        return _StreamError(status, f"{what}: {code}: {message}", 0.5)
    return _StreamError(400, f"{what}: {code or 'error'}: {message}")


def responses_token_usage(usage: Mapping[str, Any]) -> LLMTokenUsage:
    """A Responses API ``usage`` object as :class:`LLMTokenUsage` (cached tokens are inside
    ``input_tokens``, reasoning tokens inside ``output_tokens``, as OpenAI counts them)."""

    def count(details: Any, key: str) -> int | None:
        value = details.get(key) if isinstance(details, dict) else None
        return int(value) if isinstance(value, int | float) else None

    inputs = usage.get("input_tokens_details")
    outputs = usage.get("output_tokens_details")
    return LLMTokenUsage(
        prompt_tokens=int(usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("output_tokens") or 0),
        total_tokens=int(usage.get("total_tokens") or 0),
        cache_read_input_tokens=count(inputs, "cached_tokens"),
        cache_creation_input_tokens=count(inputs, "cache_write_tokens"),
        reasoning_tokens=count(outputs, "reasoning_tokens"),
    )


@dataclass
class _Turn:
    """What one streamed response has produced so far."""

    calls: dict[str, ToolCall] = field(default_factory=dict)
    """Function calls by output item id, in the order they began."""
    finished: set[str] = field(default_factory=set)
    """Item ids of the calls whose arguments are complete."""
    text: bool = False
    reasoning: list[dict[str, Any]] = field(default_factory=list)
    """Reasoning items that came with their encrypted content, to keep in the context."""


class OpenAIResponsesHttpLLMService(OpenAIHTTPMixin, StreamingHTTPLLMService):
    """The Responses API over HTTP streaming (see the module docstring).

    Configure with ``settings=OpenAIResponsesHttpLLMService.Settings(model=...,
    system_instruction=..., reasoning=...)``; an ``LLMUpdateSettingsFrame`` changes them for the
    next request. ``service_tier`` goes with every request; ``default_headers``,
    ``organization`` and ``project`` with every HTTP request. ``retry_on_timeout`` re-sends a
    request that has produced nothing ``retry_timeout_secs`` after it was sent, once.
    """

    Settings = OpenAIResponsesLLMSettings
    ReasoningConfig = OpenAIResponsesReasoningConfig
    adapter_class = OpenAIResponsesLLMAdapter
    supports_response_schema = True
    _settings: OpenAIResponsesLLMSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        service_tier: str | None = None,
        settings: OpenAIResponsesLLMSettings | None = None,
        retry_timeout_secs: float | None = 5.0,
        retry_on_timeout: bool | None = False,
        request_timeout_secs: float = 30.0,
        max_retries: int = 1,
        warmup: bool = True,
        **kwargs: Any,
    ) -> None:
        model = kwargs.pop("model", None)
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model or "gpt-4.1", **kwargs)
        self._init_http(
            api_key,
            base_url,
            organization=organization,
            project=project,
            default_headers=default_headers,
            timeout_secs=request_timeout_secs,
            warmup=warmup,
        )
        self._service_tier = service_tier
        self._max_retries = max_retries
        self._init_retry_on_timeout(retry_timeout_secs, retry_on_timeout)
        defaults = OpenAIResponsesLLMSettings(
            model=self.model_name,
            system_instruction=None,
            temperature=None,
            max_tokens=None,
            top_p=None,
            top_k=None,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            max_completion_tokens=None,
            reasoning=None,
            extra={},
        )
        self._settings = store_from(defaults, settings)
        self._adapter = self.adapter_class()
        self._turn_context: ChatContext | None = None

    def get_llm_adapter(self) -> OpenAIResponsesLLMAdapter:
        return self._adapter

    async def start(self, frame: StartFrame) -> None:
        await self._open_http()

    def _ensure_client(self) -> None:
        self._http()

    # ------------------------------------------------------------------ request

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        """The ``/responses`` body for ``context`` (public for tests and debugging);
        ``system_instruction`` replaces the configured one (:meth:`run_inference`)."""
        settings = self._settings
        messages = context_messages(context, LLM_ID)
        instruction = system_instruction or _given(settings.system_instruction)
        params = invocation_params(messages, context.tools_for_api(), instruction or None)
        body: dict[str, Any] = {
            "model": self.model_name,
            "input": params["input"],
            "stream": True,
            "store": False,
        }
        if "instructions" in params:
            body["instructions"] = params["instructions"]
        if params["tools"]:
            body["tools"] = params["tools"]
            choice = convert_tool_choice(context.tool_choice_for_api())
            if choice is not None:
                body["tool_choice"] = choice
        for name in ("temperature", "top_p"):
            value = _given(getattr(settings, name))
            if value is not None:
                body[name] = value
        limit = _given(settings.max_completion_tokens)
        if limit is None:
            limit = _given(settings.max_tokens)
        if limit is not None:
            body["max_output_tokens"] = limit
        if self._service_tier is not None:
            body["service_tier"] = self._service_tier
        reasoning = _given(settings.reasoning)
        if reasoning is not None:
            fields = reasoning.model_dump(exclude_none=True)
            if fields:
                body["reasoning"] = fields
                # The reasoning comes back encrypted, to be sent again with the next request.
                body["include"] = [ENCRYPTED_REASONING]
        body.update(settings.extra)
        if "reasoning" not in body:
            effort = _LOWEST_EFFORT.get(_model_key(self.model_name or ""))
            default = self._thinking_default_to_send(
                {"reasoning": {"effort": effort}} if effort is not None else None,
                provider="OpenAI",
                settings_fields="reasoning",
            )
            body.update(default or {})
        return body

    # ------------------------------------------------------------------ out of band

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """One response outside the pipeline (see ``LLMService.run_inference``): streamed and
        joined. Raises ``ServiceAuthError`` for a rejected key and ``CallpipeError`` for any
        other failure."""
        await self.wait_ready()
        client = self._http()
        body = self.build_request(context, system_instruction=system_instruction)
        if max_tokens is not None:
            body["max_output_tokens"] = max_tokens
        schema = self._check_response_schema(response_schema)
        if schema is not None:
            body["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": "response",
                    "schema": schema,
                    "strict": True,
                }
            }
        return await request_once_more_if_stale(self, lambda: self._joined(client, body))

    async def _joined(self, client: httpx.AsyncClient, body: dict[str, Any]) -> str | None:
        parts: list[str] = []
        async with client.stream("POST", "/responses", json=body) as response:
            status = response.status_code
            if status != 200:
                raise self._inference_error(status, await response.aread(), self._base_url)
            async for line in response.aiter_lines():
                event = _event(line)
                kind = event.get("type") if event is not None else None
                if event is None or kind is None:
                    continue
                if kind == "response.output_text.delta":
                    parts.append(str(event.get("delta") or ""))
                elif kind in ("response.failed", "error"):
                    failure = event.get("response") if kind == "response.failed" else event
                    code, message = _error_of(failure if isinstance(failure, dict) else {})
                    raise CallpipeError(f"{self}: {kind}: {code}: {message}")
        return "".join(parts) or None

    # ------------------------------------------------------------------ streaming

    async def _stream_once(self, body: dict[str, Any], produced: list[bool]) -> list[ToolCall]:
        assert self._client is not None
        turn = _Turn()
        self.reset_ttfb_metrics()
        self.start_ttfb_metrics()

        async def handle(line: str) -> bool:
            event = _event(line)
            return event is not None and await self._handle_event(event, turn, produced)

        async with self._client.stream("POST", "/responses", json=body) as response:
            if response.status_code != 200:
                raise await status_error(response, self._base_url)
            done = await read_to_end(response.aiter_lines(), handle)
        if not done:
            raise _StreamError(502, "the response stream ended before response.completed")
        return [turn.calls[item] for item in turn.calls if item in turn.finished]

    async def _handle_event(self, event: dict[str, Any], turn: _Turn, produced: list[bool]) -> bool:
        """Act on one event; True once the response is over."""
        kind = event.get("type")
        if kind == "response.output_text.delta":
            delta = str(event.get("delta") or "")
            await self._first_output(produced)
            await self.end_thought()
            if delta:
                turn.text = turn.text or bool(delta.strip())
                await self.push_llm_text(delta)
        elif kind == "response.reasoning_summary_text.delta":
            await self._first_output(produced)
            await self.push_thought(str(event.get("delta") or ""))
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                await self._first_output(produced)
                await self.end_thought()
                await self.tool_call_began()
                turn.calls[str(item.get("id") or "")] = ToolCall(
                    id=str(item.get("call_id") or ""), name=str(item.get("name") or "")
                )
        elif kind == "response.function_call_arguments.delta":
            call = turn.calls.get(str(event.get("item_id") or ""))
            if call is not None:
                call.arguments += str(event.get("delta") or "")
        elif kind == "response.function_call_arguments.done":
            item_id = str(event.get("item_id") or "")
            call = turn.calls.get(item_id)
            if call is not None:
                call.arguments = str(event.get("arguments") or "")
                turn.finished.add(item_id)
        elif kind == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                item_id = str(item.get("id") or "")
                call = turn.calls.setdefault(item_id, ToolCall(id="", name=""))
                call.id = str(item.get("call_id") or call.id)
                call.name = str(item.get("name") or call.name)
                call.arguments = str(item.get("arguments") or call.arguments)
                turn.finished.add(item_id)
            elif item.get("type") == "reasoning":
                await self.end_thought()
                if item.get("encrypted_content"):
                    turn.reasoning.append(
                        {
                            "type": "reasoning",
                            "id": item.get("id"),
                            "summary": item.get("summary") or [],
                            "encrypted_content": item["encrypted_content"],
                        }
                    )
        elif kind == "response.completed":
            result = event.get("response") or {}
            await self._report_usage(result.get("usage"))
            if not turn.text and not turn.calls:
                logger.warning(
                    "%s: response %s completed with no text and no function call",
                    self,
                    result.get("id"),
                )
            self._keep_reasoning(turn)
            return True
        elif kind == "response.incomplete":
            result = event.get("response") or {}
            await self._report_usage(result.get("usage"))
            reason = (result.get("incomplete_details") or {}).get("reason") or "unknown"
            await self.report_error(f"{self}: the response was cut short: {reason}")
            return True
        elif kind == "response.failed":
            result = event.get("response") or {}
            await self._report_usage(result.get("usage"))
            code, message = _error_of(result)
            raise _stream_error(code, message, "response.failed")
        elif kind == "error":
            code, message = _error_of(event)
            raise _stream_error(code, message, "error in stream")
        return False

    async def run_completion(self, context: ChatContext) -> list[ToolCall]:
        self._turn_context = context
        try:
            return await super().run_completion(context)
        finally:
            self._turn_context = None

    def _keep_reasoning(self, turn: _Turn) -> None:
        """Add the response's encrypted reasoning to the context (an ``LLMContext``), ahead of
        the reply or tool calls it led to, so the next request sends it back."""
        context = self._turn_context
        if turn.reasoning and isinstance(context, LLMContext):
            context.add_messages([LLMSpecificMessage(LLM_ID, item) for item in turn.reasoning])

    async def _report_usage(self, usage: Any) -> None:
        if isinstance(usage, dict) and self.usage_metrics_enabled:
            await self.start_llm_usage_metrics(responses_token_usage(usage))


class OpenAIResponsesLLMService(OpenAIResponsesHttpLLMService):
    """Pipecat 1.14's default Responses service (a WebSocket there), at its path and with its
    arguments. callpipe streams each request over HTTP (see the module docstring): ``ws_url``
    is accepted and not used, and every request carries the whole context (Pipecat's
    WebSocket variant sends only what is new, by ``previous_response_id``)."""

    def __init__(self, *, ws_url: str = DEFAULT_WS_URL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if ws_url != DEFAULT_WS_URL:
            logger.warning("%s: ws_url is not used; requests go to %s", self, self._base_url)


__all__ = [
    "OpenAIResponsesHttpLLMService",
    "OpenAIResponsesLLMService",
    "OpenAIResponsesLLMSettings",
    "OpenAIResponsesReasoningConfig",
    "responses_token_usage",
]
