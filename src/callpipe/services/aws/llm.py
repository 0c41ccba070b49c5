"""AWSBedrockLLMService: a Bedrock model over the ``ConverseStream`` REST API, signed by botocore.

Wire format (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
and the ``bedrock-runtime`` model botocore ships): ``POST /model/{modelId}/converse-stream`` to
``https://bedrock-runtime.{region}.amazonaws.com``, signed with SigV4 for the service
``bedrock`` (keys as for Polly, see :mod:`callpipe.services.aws.utils`). The JSON body has
``messages`` (``user``/``assistant`` turns of ``text``, ``toolUse`` and ``toolResult``
blocks), ``system`` (``[{"text"}]``), ``inferenceConfig`` (``maxTokens``, ``temperature``,
``topP``, ``stopSequences``: only those set), ``toolConfig`` (``tools`` of ``toolSpec``\\ s,
``toolChoice``), ``additionalModelRequestFields``, ``performanceConfig`` (``latency``) and
``outputConfig`` (``effort``).

The answer is an AWS event stream (``application/vnd.amazon.eventstream``), decoded with
botocore's own decoder: ``contentBlockDelta`` text is pushed as it comes; a ``toolUse`` block
(``contentBlockStart`` with its id and name, then pieces of its input JSON) becomes one tool
call, run by :class:`~callpipe.services.llm_service.LLMService`; ``metadata`` carries the token
usage. Messages are converted from the context's Chat Completions shape with the Anthropic
rules (the same Claude-style content blocks; images are left out). A context holding tool
blocks but no tools gets a placeholder tool, which Bedrock requires.

Errors: a 403 refuses the keys (fatal); throttling (429, or ``throttlingException`` in the
stream), 5xx and ``serviceUnavailableException`` / ``internalServerException`` are retried once
while nothing has been said; ``ValidationException`` and the rest are reported as a non-fatal
``ErrorFrame``. ``base_url`` (or ``$CALLPIPE_AWS_BEDROCK_URL``) replaces Bedrock's address.

``run_inference`` sends the same request and reads the answer whole; it pushes nothing, so it
can run beside a streaming turn.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, Field

from callpipe.adapters.llm.services.anthropic_adapter import (
    convert_messages,
    convert_tool_choice,
    convert_tools,
)
from callpipe.errors import CallpipeError, ConfigurationError, MissingDependencyError
from callpipe.frames.frames import StartFrame
from callpipe.metrics.metrics import LLMTokenUsage
from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import AWS_BEDROCK_URL_ENV, base_url
from callpipe.services._llm_stream import (
    PooledHTTPLLMService,
    _StreamError,
    context_messages,
    request_once_more_if_stale,
    status_error,
)
from callpipe.services.aws.utils import SigV4Signer, resolve_credentials
from callpipe.services.llm_service import ToolCall
from callpipe.services.settings import LLMSettings, store_from, unset
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

SERVICE = "bedrock"
DEFAULT_MODEL = "us.amazon.nova-lite-v1:0"
LLM_ID = "aws"
NO_OP_TOOL = "no_operation"
"""The placeholder tool sent when the context holds tool blocks but no tools are set."""

_STREAM_EXCEPTIONS = {
    "validationException": 400,
    "throttlingException": 429,
    "modelStreamErrorException": 424,
    "internalServerException": 500,
    "serviceUnavailableException": 503,
}
"""A stream exception's member name → the HTTP status the same error has before a stream."""


@dataclass
class AWSBedrockLLMSettings(LLMSettings):
    """``AWSBedrockLLMService.Settings``: the common LLM settings plus Converse's own.

    ``stop_sequences``: strings that end the answer. ``latency``: ``"standard"`` or
    ``"optimized"`` (``performanceConfig``). ``effort``: sent as ``outputConfig.effort`` (models
    that reason only). ``enable_prompt_caching``: a ``cachePoint`` after the system prompt and
    the tools. ``additional_model_request_fields``: sent as they are, for the model's own
    parameters. ``top_k``, penalties and ``seed`` are not part of Converse and are not sent.
    """

    stop_sequences: list[str] | None | NotGiven = field(default_factory=unset)
    latency: str | None | NotGiven = field(default_factory=unset)
    effort: str | None | NotGiven = field(default_factory=unset)
    enable_prompt_caching: bool | NotGiven = field(default_factory=unset)
    additional_model_request_fields: dict[str, Any] | NotGiven = field(default_factory=unset)


@dataclass
class _Turn:
    """What one streamed answer has produced so far."""

    tools: dict[int, ToolCall] = field(default_factory=dict)
    calls: list[ToolCall] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None


class AWSBedrockLLMService(PooledHTTPLLMService):
    """A Bedrock model (Nova, Claude, Llama, ...) through ``ConverseStream`` (module docstring).

    Configure with ``settings=AWSBedrockLLMService.Settings(model=..., max_tokens=...)``
    (Pipecat 1.14) or the older ``model=`` / ``params=InputParams(...)`` /
    ``stop_sequences=``; ``settings`` wins. ``client_config`` (a botocore ``Config``) is
    accepted for its ``read_timeout`` only: requests go out through httpx, not a boto client.
    """

    Settings = AWSBedrockLLMSettings
    _settings: AWSBedrockLLMSettings
    _warmup = False

    class InputParams(BaseModel):
        """Request options (``None`` = the model's default); the older form of ``settings=``."""

        max_tokens: int | None = Field(default=None, ge=1)
        temperature: float | None = Field(default=None, ge=0.0, le=1.0)
        top_p: float | None = Field(default=None, ge=0.0, le=1.0)
        stop_sequences: list[str] | None = Field(default_factory=lambda: [])
        latency: str | None = Field(default=None)
        additional_model_request_fields: dict[str, Any] | None = Field(default_factory=dict)

    def __init__(
        self,
        *,
        model: str | None = None,
        aws_access_key: str | None = None,
        aws_secret_key: str | None = None,
        aws_session_token: str | None = None,
        aws_region: str | None = None,
        params: InputParams | None = None,
        settings: AWSBedrockLLMSettings | None = None,
        stop_sequences: list[str] | None = None,
        client_config: Any = None,
        retry_timeout_secs: float | None = 5.0,
        retry_on_timeout: bool | None = False,
        base_url: str | None = None,
        max_retries: int = 1,
        **kwargs: Any,
    ) -> None:
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model or DEFAULT_MODEL, **kwargs)
        p = params or AWSBedrockLLMService.InputParams()
        defaults = AWSBedrockLLMSettings(
            model=self.model_name,
            system_instruction=None,
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            top_k=None,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            stop_sequences=stop_sequences or p.stop_sequences or None,
            latency=p.latency,
            effort=None,
            enable_prompt_caching=False,
            additional_model_request_fields=dict(p.additional_model_request_fields or {}),
        )
        self._settings = store_from(defaults, settings)
        credentials = resolve_credentials(
            aws_access_key_id=aws_access_key,
            aws_secret_access_key=aws_secret_key,
            aws_session_token=aws_session_token,
            region=aws_region,
        )
        self._signer = SigV4Signer(SERVICE, credentials)
        self.region = credentials.region
        default = f"https://bedrock-runtime.{credentials.region}.amazonaws.com"
        self._base_url = _base(base_url, default)
        read_timeout = getattr(client_config, "read_timeout", None)
        if client_config is not None and not isinstance(read_timeout, (int, float)):
            raise ConfigurationError(
                "AWSBedrockLLMService: client_config must be a botocore Config"
            )
        self._timeout = float(read_timeout) if read_timeout else 30.0
        self._max_retries = max_retries
        self._init_retry_on_timeout(retry_timeout_secs, retry_on_timeout)
        self._client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ connection

    def _client_headers(self) -> dict[str, str]:
        return {}

    def _make_client(self) -> httpx.AsyncClient:
        client = super()._make_client()
        client.auth = self._signer
        return client

    async def start(self, frame: StartFrame) -> None:
        await self._signer.ensure_credentials()
        self._ensure_client()

    @property
    def path(self) -> str:
        """``/model/{modelId}/converse-stream`` for the current model (the id encoded)."""
        return f"/model/{quote(self.model_name or DEFAULT_MODEL, safe='')}/converse-stream"

    # ------------------------------------------------------------------ request

    async def set_prompt_caching(self, enable: bool) -> bool:
        """An ``LLMEnablePromptCachingFrame`` sets ``enable_prompt_caching`` (next request)."""
        await self.update_settings(self.Settings(enable_prompt_caching=enable))
        return True

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        """The ``ConverseStream`` body for ``context`` (public for tests and debugging);
        ``system_instruction`` replaces the configured one (:meth:`run_inference`)."""
        s = self._settings
        messages = context_messages(
            context, LLM_ID, instruction=system_instruction or s.system_instruction
        )
        system, converted = convert_messages(messages)
        turns = [t for t in (_bedrock_turn(turn) for turn in converted) if t["content"]]
        if not turns or turns[0]["role"] != "user":
            # Converse needs a user turn first (the bot speaking first has only instructions).
            turns.insert(0, {"role": "user", "content": [{"text": system or "."}]})
            if not converted:
                system = None
        body: dict[str, Any] = {
            "messages": turns,
            "additionalModelRequestFields": dict(_given(s.additional_model_request_fields) or {}),
        }
        if system:
            body["system"] = [{"text": system}]
        inference = {
            "maxTokens": _given(s.max_tokens),
            "temperature": _given(s.temperature),
            "topP": _given(s.top_p),
            "stopSequences": _given(s.stop_sequences) or None,
        }
        inference = {k: v for k, v in inference.items() if v is not None}
        if inference:
            body["inferenceConfig"] = inference
        tools = [_tool_spec(tool) for tool in convert_tools(context.tools_for_api())]
        if tools:
            config: dict[str, Any] = {"tools": tools}
            choice = _tool_choice(convert_tool_choice(context.tool_choice_for_api()))
            if choice is not None:
                config["toolChoice"] = choice
            body["toolConfig"] = config
        elif _has_tool_blocks(turns):
            body["toolConfig"] = {"tools": [_no_op_tool()]}
        latency = _given(s.latency)
        if latency in ("standard", "optimized"):
            body["performanceConfig"] = {"latency": latency}
        effort = _given(s.effort)
        if effort:
            body["outputConfig"] = {"effort": effort}
        if s.enable_prompt_caching is True:
            if "system" in body:
                body["system"].append({"cachePoint": {"type": "default"}})
            if tools:
                body["toolConfig"]["tools"].append({"cachePoint": {"type": "default"}})
        return body

    # ------------------------------------------------------------------ out of band

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """One completion outside the pipeline (see ``LLMService.run_inference``): the same
        ``ConverseStream`` request, read whole, its text blocks joined. Pushes nothing; tool
        calls are not run. Raises ``ServiceAuthError`` for refused keys and ``CallpipeError``
        for any other failure (an exception event in the stream included)."""
        await self.wait_ready()
        self._ensure_client()
        assert self._client is not None
        body = self.build_request(context, system_instruction=system_instruction)
        if max_tokens is not None:
            body.setdefault("inferenceConfig", {})["maxTokens"] = max_tokens
        self._check_response_schema(response_schema)
        client, path = self._client, self.path
        response = await request_once_more_if_stale(self, lambda: client.post(path, json=body))
        if response.status_code != 200:
            raise self._inference_error(response.status_code, response.content, "Bedrock")
        buffer = _event_buffer()
        buffer.add_data(response.content)
        text: list[str] = []
        for message in buffer:
            headers, event = message.headers, _payload(message.payload)
            if headers.get(":message-type") != "event":
                member = headers.get(":exception-type") or "error"
                raise CallpipeError(f"{self}: {member} from Bedrock: {event.get('message')}")
            if headers.get(":event-type") == "contentBlockDelta":
                text.append(str((event.get("delta") or {}).get("text") or ""))
        return "".join(text) or None

    # ------------------------------------------------------------------ streaming

    async def _stream_once(self, body: dict[str, Any], produced: list[bool]) -> list[ToolCall]:
        assert self._client is not None
        buffer = _event_buffer()
        self.reset_ttfb_metrics()
        self.start_ttfb_metrics()
        state = _Turn()
        async with self._client.stream("POST", self.path, json=body) as response:
            if response.status_code != 200:
                raise await _bedrock_status_error(response)
            async for chunk in response.aiter_bytes():
                buffer.add_data(chunk)
                for message in buffer:
                    await self._handle_message(message.headers, message.payload, state, produced)
        if state.usage and self.usage_metrics_enabled:
            await self.start_llm_usage_metrics(bedrock_token_usage(state.usage))
        if state.stop_reason not in (None, "end_turn", "tool_use", "stop_sequence"):
            logger.warning("%s: the answer stopped early: %s", self, state.stop_reason)
        return [call for call in state.calls if call.name != NO_OP_TOOL]

    async def _handle_message(
        self, headers: dict[str, Any], payload: bytes, state: _Turn, produced: list[bool]
    ) -> None:
        kind = headers.get(":message-type")
        if kind != "event":
            member = str(headers.get(":exception-type") or headers.get(":error-code") or "")
            message = _payload(payload).get("message") or headers.get(":error-message") or ""
            status = _STREAM_EXCEPTIONS.get(member, 500)
            retry = 0.5 if status == 429 or status >= 500 else None
            raise _StreamError(status, f"{member or 'error'} in stream: {message}", retry)
        event_type = headers.get(":event-type")
        event = _payload(payload)
        if event_type in ("contentBlockStart", "contentBlockDelta"):
            await self._first_output(produced)
        index = int(event.get("contentBlockIndex", -1))
        if event_type == "contentBlockStart":
            use = (event.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                await self.tool_call_began()
                state.tools[index] = ToolCall(
                    id=str(use.get("toolUseId") or ""),
                    name=str(use.get("name") or ""),
                    arguments="",
                )
        elif event_type == "contentBlockDelta":
            delta = event.get("delta") or {}
            if delta.get("text"):
                await self.push_llm_text(str(delta["text"]))
            use = delta.get("toolUse")
            if isinstance(use, dict) and index in state.tools:
                state.tools[index].arguments += str(use.get("input") or "")
        elif event_type == "contentBlockStop":
            call = state.tools.pop(index, None)
            if call is not None:
                call.arguments = call.arguments or "{}"
                state.calls.append(call)
        elif event_type == "messageStop":
            state.stop_reason = event.get("stopReason")
        elif event_type == "metadata":
            usage = event.get("usage")
            if isinstance(usage, dict):
                state.usage.update(usage)


async def _bedrock_status_error(response: httpx.Response) -> _StreamError:
    """The error for a refused request; Bedrock's ``ThrottlingException`` is a 429 already,
    ``ModelNotReadyException`` too."""
    error = await status_error(response, "Bedrock")
    code = response.headers.get("x-amzn-ErrorType", "").split(":", 1)[0]
    if code:
        error = _StreamError(error.status, f"{code}: {error}", error.retry_in)
    return error


def _event_buffer() -> Any:
    try:
        from botocore.eventstream import EventStreamBuffer
    except ImportError as exc:
        raise MissingDependencyError("botocore (AWS event streams)", "aws") from exc
    return EventStreamBuffer()


def _payload(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _bedrock_block(block: dict[str, Any]) -> dict[str, Any] | None:
    """An Anthropic content block in Converse's shape; None for what is left out (images,
    thinking)."""
    kind = block.get("type")
    if kind == "text":
        return {"text": block["text"]} if block.get("text") else None
    if kind == "tool_use":
        use = {"toolUseId": block["id"], "name": block["name"], "input": block.get("input") or {}}
        return {"toolUse": use}
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            texts = [{"text": b["text"]} for b in content if b.get("type") == "text"]
        else:
            texts = [{"text": str(content)}]
        result = {"toolUseId": block["tool_use_id"], "content": texts or [{"text": "(empty)"}]}
        return {"toolResult": result}
    return None


def _bedrock_turn(turn: dict[str, Any]) -> dict[str, Any]:
    blocks = (_bedrock_block(b) for b in turn["content"])
    return {"role": turn["role"], "content": [b for b in blocks if b is not None]}


def _tool_spec(tool: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        spec["description"] = tool["description"]
    spec["inputSchema"] = {"json": tool.get("input_schema") or {"type": "object"}}
    return {"toolSpec": spec}


def _tool_choice(choice: dict[str, Any] | None) -> dict[str, Any] | None:
    kind = (choice or {}).get("type")
    if kind in ("auto", "any"):
        return {str(kind): {}}
    if kind == "tool" and choice is not None:
        return {"tool": {"name": choice["name"]}}
    return None


def _has_tool_blocks(turns: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for t in turns for b in t["content"])


def _no_op_tool() -> dict[str, Any]:
    schema = {"type": "object", "properties": {}}
    description = "Does nothing; present because the conversation used tools before."
    return {
        "toolSpec": {
            "name": NO_OP_TOOL,
            "description": description,
            "inputSchema": {"json": schema},
        }
    }


def _given(value: Any) -> Any:
    return value if is_given(value) else None


def _base(explicit: str | None, default: str) -> str:
    return base_url(explicit, AWS_BEDROCK_URL_ENV, default)


def bedrock_token_usage(usage: dict[str, Any]) -> LLMTokenUsage:
    """A Converse ``metadata.usage`` object as :class:`LLMTokenUsage`."""
    prompt = int(usage.get("inputTokens") or 0)
    completion = int(usage.get("outputTokens") or 0)
    read = usage.get("cacheReadInputTokens")
    written = usage.get("cacheWriteInputTokens")
    return LLMTokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(usage.get("totalTokens") or prompt + completion),
        cache_read_input_tokens=int(read) if isinstance(read, int) else None,
        cache_creation_input_tokens=int(written) if isinstance(written, int) else None,
    )


__all__ = ["AWSBedrockLLMService", "AWSBedrockLLMSettings", "bedrock_token_usage"]
