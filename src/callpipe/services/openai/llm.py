"""OpenAILLMService: streaming Chat Completions over httpx.

Works with any server speaking the OpenAI Chat Completions API with ``stream=true``
(OpenAI, Groq, Together, Fireworks, vLLM, Ollama, llama.cpp server): pass ``base_url``.

Wire format: POST ``{base_url}/chat/completions``; the response is Server-Sent Events, one
``data: {json}`` line per chunk (``choices[0].delta.content`` text, ``delta.tool_calls[]`` with an
``index`` and pieces of ``function.arguments``), ending with ``data: [DONE]``. Reasoning
deltas (``reasoning_content``, as DeepSeek and vLLM send, or ``reasoning``) become LLM thought
frames, closed when the answer or a tool call begins.

Start-up warms the connection pool with ``GET {base_url}/models``: the first completion then
skips TCP/TLS set-up, and a rejected key is reported at start, not at the first turn.

``run_inference`` (one completion outside the pipeline, e.g. a context summary) sends the same
request as a turn, streamed too, and joins the text: every server the turns work with answers
it the same way, and it shares the turn's client and connection pool. It pushes nothing, so it
can run beside a streaming turn.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from callpipe.adapters.llm.services.open_ai_adapter import OpenAILLMInvocationParams
from callpipe.errors import CallpipeError
from callpipe.frames.frames import (
    StartFrame,
)
from callpipe.metrics.metrics import LLMTokenUsage
from callpipe.processors.aggregators.llm_context import ChatContext, LLMContext
from callpipe.services._llm_stream import (
    StreamingHTTPLLMService,
    _StreamError,
    read_to_end,
    request_once_more_if_stale,
    status_error,
)
from callpipe.services.llm_service import ToolCall
from callpipe.services.openai._client import OpenAIHTTPMixin
from callpipe.services.settings import LLMSettings, store_from
from callpipe.utils.base_object import warn_ignored_option
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)


def _unset() -> Any:
    return NotGiven()


_CLIENT_ONLY_OPTIONS = ("extra_headers", "extra_query", "timeout")
"""Options of the OpenAI Python client's ``create()`` that are not request fields; callpipe
speaks HTTP itself and does not apply them (one warning each, never sent to the provider)."""


@dataclass
class OpenAILLMSettings(LLMSettings):
    """``OpenAILLMService.Settings``: the common LLM settings plus ``max_completion_tokens``."""

    max_completion_tokens: int | None | NotGiven = field(default_factory=_unset)


_SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "frequency_penalty",
    "presence_penalty",
    "seed",
)


class OpenAILLMService(OpenAIHTTPMixin, StreamingHTTPLLMService):
    """Chat Completions LLM (see the module docstring).

    Configure with ``settings=OpenAILLMService.Settings(model=..., temperature=...)`` (Pipecat
    1.14) or the older ``model=`` / ``params=InputParams(...)``; ``settings`` wins where both
    set a field. ``LLMUpdateSettingsFrame(delta=OpenAILLMService.Settings(...))`` changes them
    for the next completion. ``service_tier`` (``"auto"``, ``"flex"``, ``"priority"``...) is
    sent with every request; the argument wins over ``params.service_tier``.

    ``default_headers`` are added to every request (as the OpenAI SDK's), over the ones
    callpipe sets. With ``retry_on_timeout``, a request that has streamed no text or tool call
    ``retry_timeout_secs`` after it was sent is sent again once (see
    :mod:`callpipe.services._llm_stream`); ``request_timeout_secs`` still bounds every request.
    """

    Settings = OpenAILLMSettings
    supports_response_schema = True
    supports_developer_role: bool = True
    """Whether the provider takes ``developer`` messages (Pipecat 1.14's flag). A provider that
    does not gets them as ``user`` messages, with an ``LLMContext`` (where asynchronous function
    results arrive in them)."""

    class InputParams(BaseModel):
        """Sampling options sent with every request (``None`` = provider default)."""

        model_config = ConfigDict(extra="forbid")

        temperature: float | None = None
        top_p: float | None = None
        max_tokens: int | None = None
        max_completion_tokens: int | None = None
        frequency_penalty: float | None = None
        presence_penalty: float | None = None
        seed: int | None = None
        top_k: int | None = Field(default=None, ge=0)
        """Accepted and ignored, as in Pipecat 1.14 (Chat Completions has no ``top_k``; a
        provider that takes one gets it through ``extra``)."""
        service_tier: str | None = None
        extra: dict[str, Any] = Field(default_factory=dict)

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        service_tier: str | None = None,
        params: InputParams | None = None,
        settings: OpenAILLMSettings | None = None,
        organization: str | None = None,
        project: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        request_timeout_secs: float = 30.0,
        max_retries: int = 1,
        retry_timeout_secs: float | None = 5.0,
        retry_on_timeout: bool | None = False,
        warmup: bool = True,
        **kwargs: Any,
    ) -> None:
        if settings is not None and isinstance(settings.model, str) and model is None:
            model = settings.model
        super().__init__(model=model or "gpt-4o-mini", **kwargs)
        self._init_http(
            api_key,
            base_url,
            organization=organization,
            project=project,
            default_headers=default_headers,
            timeout_secs=request_timeout_secs,
            warmup=warmup,
        )
        self._params = params or OpenAILLMService.InputParams()
        self._service_tier = service_tier if service_tier is not None else self._params.service_tier
        self._max_retries = max_retries
        self._init_retry_on_timeout(retry_timeout_secs, retry_on_timeout)
        # ``self.Settings``: a provider subclass's own fields (e.g. Groq's reasoning_effort)
        # then survive the merge with ``settings=``.
        defaults = self.Settings(
            model=self.model_name,
            system_instruction=None,
            top_k=None,
            **{name: getattr(self._params, name) for name in _SAMPLING_FIELDS},
            extra=dict(self._params.extra),
        )
        self._settings = store_from(defaults, settings)

    async def start(self, frame: StartFrame) -> None:
        await self._open_http()

    # ------------------------------------------------------------------ completion

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        """The request body for ``context``; ``system_instruction`` replaces the configured
        instruction (:meth:`run_inference`)."""
        settings = self._settings
        messages = context.messages_for_api()
        if not self.supports_developer_role and isinstance(context, LLMContext):
            messages = [
                {**m, "role": "user"} if m.get("role") == "developer" else m for m in messages
            ]
        instruction = system_instruction or settings.system_instruction
        if isinstance(instruction, str) and instruction:
            messages.insert(0, {"role": "system", "content": instruction})
        from_context: OpenAILLMInvocationParams = {"messages": messages}
        tools = context.tools_for_api()
        if tools:
            from_context["tools"] = tools
            tool_choice = context.tool_choice_for_api()
            if tool_choice is not None:
                from_context["tool_choice"] = tool_choice
        body = self.build_chat_completion_params(from_context)
        # The OpenAI client's request options, as Pipecat passes them through ``Settings.extra``
        # or this hook: ``extra_body`` is merged into the JSON body, as the client sends it.
        extra_body = body.pop("extra_body", None)
        if isinstance(extra_body, Mapping):
            body.update(extra_body)
        for option in _CLIENT_ONLY_OPTIONS:
            if option in body:
                del body[option]
                warn_ignored_option(
                    self, option, "an OpenAI client option; callpipe sends the request itself"
                )
        return body

    def build_chat_completion_params(
        self, params_from_context: OpenAILLMInvocationParams
    ) -> dict[str, Any]:
        """The request body around what came from the context (messages, tools, tool choice):
        model, streaming, the sampling settings that are set, ``service_tier``, then
        ``Settings.extra`` over all of it.

        Pipecat 1.14's hook for OpenAI-compatible providers: a subclass overrides it to add or
        change fields of every request, e.g. ``params = super().build_chat_completion_params(
        params_from_context); params["extra_body"] = {...}; return params``."""
        settings = self._settings
        body: dict[str, Any] = {"model": self.model_name, "stream": True}
        body.update(params_from_context)
        if self.usage_metrics_enabled:
            body["stream_options"] = {"include_usage": True}
        for name in _SAMPLING_FIELDS:
            value = getattr(settings, name)
            if is_given(value) and value is not None:
                body[name] = value
        if self._service_tier is not None:
            body["service_tier"] = self._service_tier
        body.update(settings.extra)
        return body

    def completions_path(self) -> str:
        """The path, under the base URL, completions are posted to (Azure's dated API puts
        the deployment in it)."""
        return "/chat/completions"

    def _ensure_client(self) -> None:
        self._http()

    # ------------------------------------------------------------------ out of band

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """One completion outside the pipeline (see ``LLMService.run_inference``).

        Streamed and joined, as the module docstring explains; a kept-alive connection the
        server had just closed is retried once. Raises ``ServiceAuthError`` for a rejected
        key and ``CallpipeError`` for any other failure.
        """
        await self.wait_ready()
        client = self._http()
        body = self.build_request(context, system_instruction=system_instruction)
        body.pop("stream_options", None)  # no usage metrics for out-of-band completions
        if max_tokens is not None:
            key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
            body[key] = max_tokens
        schema = self._check_response_schema(response_schema)
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema, "strict": True},
            }
        try:
            return await request_once_more_if_stale(
                self, lambda: self._joined_completion(client, body)
            )
        except _StreamError as exc:
            raise CallpipeError(str(exc)) from exc

    async def _joined_completion(
        self, client: httpx.AsyncClient, body: dict[str, Any]
    ) -> str | None:
        parts: list[str] = []

        async def add_text(chunk: dict[str, Any]) -> None:
            choices = chunk.get("choices") or []
            if choices:
                content = (choices[0].get("delta") or {}).get("content")
                if content:
                    parts.append(str(content))

        async with client.stream("POST", self.completions_path(), json=body) as response:
            status = response.status_code
            if status != 200:
                raise self._inference_error(status, await response.aread(), self._base_url)
            await read_to_end(response.aiter_lines(), self._chunk_reader(add_text))
        return "".join(parts) or None

    def _chunk_reader(
        self, on_chunk: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> Callable[[str], Awaitable[bool]]:
        """A :func:`read_to_end` line handler giving each chunk to ``on_chunk``; the response
        is complete at ``data: [DONE]``."""

        async def handle(line: str) -> bool:
            if not line.startswith("data:"):
                return False
            data = line[5:].strip()
            if data == "[DONE]":
                return True
            chunk = self.stream_event(data)
            if chunk is not None:
                await on_chunk(chunk)
            return False

        return handle

    async def _stream_once(self, body: dict[str, Any], produced: list[bool]) -> list[ToolCall]:
        assert self._client is not None
        calls: dict[int, ToolCall] = {}
        self.reset_ttfb_metrics()
        self.start_ttfb_metrics()

        async def on_chunk(chunk: dict[str, Any]) -> None:
            await self._handle_chunk(chunk, calls, produced)

        async with self._client.stream("POST", self.completions_path(), json=body) as response:
            if response.status_code != 200:
                raise await status_error(response, self._base_url)
            await read_to_end(response.aiter_lines(), self._chunk_reader(on_chunk))
        result = [calls[i] for i in sorted(calls) if calls[i].name]
        for n, call in enumerate(result):
            call.id = call.id or f"call_{n}"
        return result

    async def _handle_chunk(
        self, chunk: dict[str, Any], calls: dict[int, ToolCall], produced: list[bool]
    ) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, dict) and self.usage_metrics_enabled:
            await self.start_llm_usage_metrics(openai_token_usage(usage))
        choices = chunk.get("choices") or []
        if not choices:
            return
        delta = choices[0].get("delta") or {}
        content = delta.get("content")
        tool_deltas = delta.get("tool_calls")
        # DeepSeek and vLLM stream the model's reasoning as ``reasoning_content`` (some
        # OpenAI-compatible servers as ``reasoning``) before the answer.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if content or tool_deltas or reasoning:
            await self._first_output(produced)
        if isinstance(reasoning, str) and reasoning:
            await self.push_thought(reasoning)
        if content or tool_deltas:
            await self.end_thought()
        for tool_delta in tool_deltas or ():
            index = int(tool_delta.get("index", len(calls)))
            call = calls.get(index)
            if call is None:
                call = calls[index] = ToolCall(id="", name="")
                await self.tool_call_began()
            if tool_delta.get("id"):
                call.id = tool_delta["id"]
            function = tool_delta.get("function") or {}
            if function.get("name") and not call.name:
                call.name = function["name"]
            if function.get("arguments"):
                call.arguments += function["arguments"]
        if content:
            await self.push_llm_text(str(content))


def max_tokens_only(body: dict[str, Any]) -> None:
    """Send ``body``'s ``max_completion_tokens`` as ``max_tokens`` (a ``max_tokens`` already
    there wins), for servers that know only the older name."""
    completion_tokens = body.pop("max_completion_tokens", None)
    if completion_tokens is not None:
        body.setdefault("max_tokens", completion_tokens)


def _count(details: Any, key: str) -> int | None:
    """An optional count from a ``*_tokens_details`` object (None when not reported)."""
    if not isinstance(details, dict):
        return None
    value = details.get(key)
    return int(value) if isinstance(value, int | float) else None


def openai_token_usage(usage: dict[str, Any]) -> LLMTokenUsage:
    """An OpenAI ``usage`` object as :class:`LLMTokenUsage`.

    ``prompt_tokens_details.cached_tokens`` (prompt cache hits, already inside
    ``prompt_tokens``), ``completion_tokens_details.reasoning_tokens`` (already inside
    ``completion_tokens``) and the audio token counts are carried when the server sends them.
    ``cache_write_tokens`` is what some OpenAI-compatible servers report for cache writes.
    """
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    return LLMTokenUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        total_tokens=int(usage.get("total_tokens") or 0),
        cache_read_input_tokens=_count(prompt, "cached_tokens"),
        cache_creation_input_tokens=_count(prompt, "cache_write_tokens"),
        reasoning_tokens=_count(completion, "reasoning_tokens"),
        input_audio_tokens=_count(prompt, "audio_tokens"),
        output_audio_tokens=_count(completion, "audio_tokens"),
    )
