"""LLMService: runs a chat model on the conversation context, with function calling.

Frames in: ``LLMContextFrame`` (Pipecat 1.14) or ``OpenAILLMContextFrame`` (older API) from the
user aggregator, ``LLMMessagesFrame``, ``LLMUpdateSettingsFrame``.
Frames out: ``LLMFullResponseStartFrame``, ``LLMTextFrame``…, ``LLMFullResponseEndFrame`` per
completion. When the model asks for tools, the handlers run concurrently (registered with
:meth:`LLMService.register_function`, or carried by the context's ``FunctionSchema``), the
assistant ``tool_calls`` message and the ``tool`` results are appended to the context and the
model runs again, until it answers in text (bounded by ``max_tool_rounds``). The function-call
frames bots and mute strategies watch (``FunctionCallsStartedFrame``,
``FunctionCallInProgressFrame``, ``FunctionCallResultFrame``, ``FunctionCallCancelFrame``) are
broadcast both ways; the context itself is updated here, in one place. A result's
``FunctionCallResultProperties.on_context_updated`` runs in a task of its own once the result
is in the context (the next completion does not wait for it).

A completion runs inside the processor's worker, so an ``InterruptionFrame`` cancels it: the
HTTP stream is closed, handlers registered with ``cancel_on_interruption=True`` (the default)
are cancelled and announced with ``FunctionCallCancelFrame``.

Asynchronous function calls (Pipecat 1.14; the conversation is an ``LLMContext``): a function
registered with ``cancel_on_interruption=False`` does not hold the conversation. Its call goes
into the context at once with a ``started`` tool message (see
:mod:`callpipe.processors.aggregators.async_tool_messages`) and the service is free again: the
model answers the caller's next turns meanwhile, and interruptions leave the call running. A
progress report (``result_callback(..., properties=FunctionCallResultProperties(
is_final=False))``, only for such calls; a synchronous call's is ignored with a warning, and a
service whose ``accepts_intermediate_function_call_results`` is False drops it) adds an
``intermediate`` developer message. The outcome replaces the ``started`` message when nothing
was said since (as a synchronous result would), else it comes as a ``final`` developer message;
as in 1.14 both are written as JSON (a text result too), an empty outcome as ``COMPLETED``.
Then the model runs again to tell the caller (``run_llm`` decides, by default once the last call
of the response has ended; an empty outcome asks for no run). That run waits while the caller
speaks (their turn's run sees the outcome) and while the bot speaks (it starts when the bot
stops), and an interruption drops it.
A timed-out call is cancelled (``FunctionCallCancelFrame`` with ``run_llm=True``, a cancellation
message, a new run). While such a function is registered, ``ASYNC_TOOL_INSTRUCTIONS`` is composed
into the system instruction; one registered with ``cancellable_by_llm=True`` (or any, with the
deprecated ``enable_async_tool_cancellation=True``) is advertised with a ``cancel_<name>`` tool
(:mod:`callpipe.utils.async_tool_cancellation`, with its instructions) for as long as it is
registered; calling it stops the running call, whose end is written as a cancellation message.
:meth:`LLMService.cancel_function_calls` stops every call in flight (asynchronous or not) for
the application, without a new run.
The older ``OpenAILLMContext`` (and a speech-to-speech service's own calls) keep callpipe's
earlier behaviour: the model waits for every call, and one registered with
``cancel_on_interruption=False`` that outlives an interruption finishes in the background, its
call + result written to the context without a new reply.

Out of band: :meth:`LLMService.run_inference` is one completion on a given context, returned
as text and never pushed into the pipeline (Pipecat 1.14's method). Context summarization uses
it: an ``LLMContextSummaryRequestFrame`` from the assistant aggregator starts a background task
(a streaming turn goes on undisturbed) whose result goes back as an
``LLMContextSummaryResultFrame``, broadcast both ways (see
:mod:`callpipe.processors.aggregators.llm_context_summarizer`). Summaries still being made when
the call ends are cancelled.

Pipecat 1.14's output frames: an ``LLMConfigureOutputFrame(skip_tts=True)`` marks the text of
the following completions ``skip_tts`` (the TTS passes it on unspoken, the context still gets
it) until one with ``skip_tts=False``. Reasoning text a provider streams (OpenAI-compatible
``reasoning_content``, Gemini thought parts) goes out as ``LLMThoughtStartFrame``,
``LLMThoughtTextFrame``\\ s and ``LLMThoughtEndFrame``, never as text to speak. At start the
service broadcasts an ``LLMServiceMetadataFrame``.

Turn completion (Pipecat 1.14's ``filter_incomplete_user_turns``, switched on by
``FilterIncompleteUserTurnStrategies`` with an ``LLMUpdateSettingsFrame``): the turn-completion
instructions are appended to the system instruction, and the reply's text goes through a
:class:`~callpipe.services._turn_completion.TurnCompletionFilter` that reads the leading marker
(``●`` speak, ``◐`` / ``○`` stay quiet and nudge later). Off, the text path is unchanged but
for one ``is None`` test per token.

Eager end of turn (``EagerUserTurnStrategies``): an ``LLMContextFrame`` with ``speculation=True``
answers a turn the STT only predicts has ended. Its reply goes through a
:class:`~callpipe.turns.speculation_gate.SpeculationGate` (made on the first such frame; until
then pushing costs one ``is None`` test) and is held until a ``UserStoppedSpeakingFrame``
confirms the turn. An ``EagerEndOfTurnCancelFrame`` drops it and cancels the request (queued or
streaming). A speculative run that asks for tools is withdrawn instead (an
``EagerEndOfTurnCancelFrame`` both ways; the committed turn runs them). One confirmed before it
reached its tools runs them as ordinary calls on the conversation's own context (its own is a
provisional copy, see ``ProvisionalLLMContext``) and answers from their results, so nothing of
the reply already released is said again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from callpipe.adapters.llm.base_llm_adapter import BaseLLMAdapter
from callpipe.adapters.llm.schemas.direct_function import (
    DirectFunction,
    DirectFunctionWrapper,
    options_of,
)
from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.adapters.llm.services.open_ai_adapter import OpenAILLMAdapter
from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EagerEndOfTurnCancelFrame,
    EndFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMConfigureOutputFrame,
    LLMContextFrame,
    LLMContextSummaryRequestFrame,
    LLMEnablePromptCachingFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    LLMThoughtEndFrame,
    LLMThoughtStartFrame,
    LLMThoughtTextFrame,
    LLMUpdateSettingsFrame,
    ServiceSwitcherRequestMetadataFrame,
    StartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData, TTFATMetricsData
from callpipe.processors.aggregators import async_tool_messages
from callpipe.processors.aggregators.llm_context import (
    ChatContext,
    LLMContext,
    LLMSpecificMessage,
    ProvisionalLLMContext,
)
from callpipe.processors.aggregators.llm_context_summarizer import summarize_context
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services._turn_completion import TurnCompletionFilter
from callpipe.services.ai_service import AIService, warn_ignored_option
from callpipe.services.settings import LLMSettings, delta_from_frame, store_from
from callpipe.transports.record_hooks import note_function_call
from callpipe.turns.speculation_gate import SpeculationGate
from callpipe.turns.user_turn_completion_mixin import UserTurnCompletionConfig
from callpipe.utils.async_tool_cancellation import (
    ASYNC_TOOL_CANCELLATION_INSTRUCTIONS,
    build_cancel_tool_schema,
    cancel_tool_name,
)
from callpipe.utils.async_tool_cancellation import (
    CANCEL_TOOL_PREFIX as CANCEL_TOOL_PREFIX,
)

if TYPE_CHECKING:
    from callpipe.processors.aggregators.llm_response import (
        LLMAssistantAggregatorParams,
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )

logger = logging.getLogger(__name__)


class FunctionCallResultCallback(Protocol):
    """How a function handler reports its result (Pipecat 1.14's type of
    :attr:`FunctionCallParams.result_callback`).

    ``await callback(result)`` gives the outcome; ``properties=FunctionCallResultProperties(
    run_llm=False)`` keeps the model quiet after it. With ``is_final=False`` the call is a
    progress report instead, which only an asynchronous call (``cancel_on_interruption=False``)
    may send, and only on a service whose
    :attr:`LLMService.accepts_intermediate_function_call_results` is True; anywhere else it is
    dropped with a warning.
    """

    async def __call__(
        self, result: Any, *, properties: FunctionCallResultProperties | None = None
    ) -> None: ...


@dataclass
class FunctionCallParams:
    """What a function handler receives; call ``await params.result_callback(result)``.

    A handler may instead simply ``return`` its result. ``result_callback`` also takes
    ``properties=FunctionCallResultProperties(run_llm=False)`` to keep the model quiet after
    the result.
    """

    function_name: str
    tool_call_id: str
    arguments: dict[str, Any]
    llm: LLMService
    context: ChatContext
    result_callback: FunctionCallResultCallback
    pipeline_worker: Any = None
    """1.14's worker running the pipeline (None when the service runs without one)."""
    app_resources: Any = None
    """1.14's ``PipelineWorker(app_resources=...)``: the same object, not a copy."""
    worker_runner: Any = None
    """1.14's runner hosting the worker (None when the worker runs without one)."""

    @property
    def tool_resources(self) -> Any:
        """Deprecated alias of :attr:`app_resources` (as in Pipecat 1.14)."""
        warnings.warn(
            "FunctionCallParams.tool_resources is deprecated; use app_resources",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.app_resources


FunctionHandler = Callable[[FunctionCallParams], Awaitable[Any]]


@dataclass
class ToolCall:
    """One tool call assembled from the streamed deltas."""

    id: str
    name: str
    arguments: str = ""

    def as_message_entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments or "{}"},
        }


@dataclass
class _Registration:
    handler: FunctionHandler
    cancel_on_interruption: bool = True
    timeout_secs: float | None = None
    cancellable_by_llm: bool = False
    builtin: bool = False
    """A cancel tool the service advertises itself (left out of the started event/frame)."""


@dataclass
class _RunningCall:
    """A call that outlived an interruption and that the model may cancel."""

    name: str
    tool_call_id: str
    arguments: Any
    context: ChatContext
    task: asyncio.Task[_Outcome]


_TURN_STATE_FRAMES = (
    InterruptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
)
"""Frames the LLM service follows for a run owed to an asynchronous result."""


class _Cancellable(Protocol):
    """What the cancel tools need of a running call."""

    @property
    def tool_call_id(self) -> str: ...

    @property
    def arguments(self) -> Any: ...


_C = TypeVar("_C", bound=_Cancellable)
_T = TypeVar("_T")


@dataclass
class _Batch:
    """The calls of one model response that contains an asynchronous call (1.14's group):
    by default the model runs again when the last of them has ended."""

    pending: set[str]


@dataclass
class _AsyncCall:
    """An asynchronous call (``cancel_on_interruption=False`` on an ``LLMContext``) that has
    not ended yet (``settled``: its outcome or cancellation is in the context)."""

    name: str
    tool_call_id: str
    raw_arguments: str
    arguments: Any
    context: LLMContext
    registration: _Registration
    batch: _Batch
    task: asyncio.Task[None] | None = None
    settled: bool = False


IN_PROGRESS = "IN_PROGRESS"
"""The content of a synchronous call's ``tool`` message until its result comes, when it is
answered in the same response as an asynchronous call (as in Pipecat 1.14)."""

_NO_INSTRUCTION = object()

_NO_RESULT = object()

_TURN_COMPLETION_FIELDS = frozenset(
    {"filter_incomplete_user_turns", "user_turn_completion_config", "system_instruction"}
)


def _json_or_text(value: str) -> Any:
    """For the call record: a JSON argument/result string parsed, anything else as it is."""
    try:
        return json.loads(value)
    except ValueError:
        return value


@dataclass
class _ResultBox:
    value: Any = field(default=_NO_RESULT)
    properties: FunctionCallResultProperties | None = None


@dataclass
class _Outcome:
    """A finished call: the text for the ``tool`` message and how it wants to be used
    (``cancelled``: :meth:`LLMService.cancel_function_calls` stopped it; no result is
    announced and the model does not run for it)."""

    content: str
    properties: FunctionCallResultProperties | None = None
    error: str | None = None
    cancelled: bool = False


_CANCELLED_CONTENT = json.dumps({"error": "cancelled"})
"""The ``tool`` message of a call the model waited for that was stopped by
:meth:`LLMService.cancel_function_calls`."""


@dataclass
class _WaitedCall:
    """A call the model waits for, while its handler runs (in ``task``): what
    :meth:`LLMService.cancel_function_calls` stops (``cancelled``: it did)."""

    name: str
    tool_call_id: str
    arguments: Any
    context: ChatContext
    task: asyncio.Task[Any]
    cancelled: bool = False


class LLMService(AIService):
    """Base of LLM services: function registry, context frames, the tool loop, settings."""

    kind = "llm"
    Settings: type[LLMSettings] = LLMSettings
    supports_response_schema: bool = False
    """Whether :meth:`run_inference` can have the provider enforce a ``response_schema``."""
    adapter_class: type[BaseLLMAdapter[Any]] = OpenAILLMAdapter
    """The adapter :meth:`get_llm_adapter` hands out (Pipecat's; OpenAI's by default)."""

    _pipecat_subclass: ClassVar[bool] = False
    """The class follows Pipecat's subclass contract (set per class by ``__init_subclass__``):
    it overrides ``process_frame``, runs the model itself on an ``LLMContextFrame`` and pushes
    the frames it does not consume, where callpipe's providers implement
    :meth:`run_completion` and leave the frames to this base."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [c for c in cls.__mro__ if issubclass(c, LLMService) and c is not LLMService]
        cls._pipecat_subclass = (
            cls.process_frame is not LLMService.process_frame
            and cls.run_completion is LLMService.run_completion
            and not any(c.__module__.startswith("callpipe.") for c in own)
        )

    def __init__(
        self,
        *,
        max_tool_rounds: int = 8,
        function_call_timeout_secs: float | None = None,
        run_in_parallel: bool = True,
        group_parallel_tools: bool = True,
        enable_async_tool_cancellation: bool = False,
        settings: LLMSettings | None = None,
        file_resolver: Any = None,
        **kwargs: Any,
    ) -> None:
        """``settings``: Pipecat 1.14's ``settings=`` for a service built on this class; its
        given fields win over ``model`` (a provider's own class handles its ``settings=``
        itself and does not pass it here). ``file_resolver`` (Pipecat's) is accepted and
        ignored, with a warning: callpipe's contexts carry no file URLs to resolve."""
        super().__init__(**kwargs)
        if file_resolver is not None:
            warn_ignored_option(
                self, "file_resolver", "callpipe's LLM contexts carry no file URLs to resolve"
            )
        self._run_in_parallel = run_in_parallel
        if not group_parallel_tools:
            logger.info(
                "%s: group_parallel_tools=False has no effect: the results of one response's "
                "function calls always go back to the model together, in one new completion",
                self,
            )
        if enable_async_tool_cancellation:
            warnings.warn(
                "enable_async_tool_cancellation is deprecated; register the functions the "
                "model may cancel with cancellable_by_llm=True instead",
                DeprecationWarning,
                stacklevel=2,
            )
        self._enable_async_tool_cancellation = enable_async_tool_cancellation
        self._functions: dict[str | None, _Registration] = {}
        self._max_tool_rounds = max_tool_rounds
        self._function_call_timeout_secs = function_call_timeout_secs
        # A given Settings subclass (a custom service's own fields) is kept as the store's type.
        store = type(settings) if isinstance(settings, self.Settings) else self.Settings
        self._settings: LLMSettings = store_from(store(model=self.model_name), settings)
        if isinstance(self._settings.model, str):
            self.set_model_name(self._settings.model)
        self._thinking_default_logged: tuple[str, bool] | None = None
        # (request sent, its TTFB) from the first output until the first answer token.
        self._ttfat_pending: tuple[float, float] | None = None
        self._background_calls: set[asyncio.Task[Any]] = set()
        # cancellable_by_llm calls running after an interruption, by tool_call_id, and the
        # cancel tools advertised for them (by name).
        self._llm_cancellable: dict[str, _RunningCall] = {}
        self._cancel_schemas: dict[str, FunctionSchema] = {}
        self._cancelled_by_llm: set[str] = set()
        # Asynchronous calls not ended yet (by tool_call_id), the cancel tools advertised for
        # cancellable functions (by cancel tool name), and the collisions already warned of.
        self._async_calls: dict[str, _AsyncCall] = {}
        # The handlers of the calls the model waits for, running now (by tool_call_id).
        self._waited_calls: dict[str, _WaitedCall] = {}
        self._builtin_cancel_tools: dict[str, FunctionSchema] = {}
        self._warned_cancel_collisions: set[str] = set()
        self._warned_options: set[str | None] = set()
        # A run owed to the model for an asynchronous result (its context), the frame queued
        # for it, the context being run now (a result arriving then waits for its end), and
        # who is speaking (the run waits for both to stop).
        self._run_owed: LLMContext | None = None
        self._owed_frame: LLMContextFrame | None = None
        self._running_context: ChatContext | None = None
        self._user_speaking = False
        self._bot_speaking = False
        self._ending = False
        # The system instruction before the async-tool instructions were added to it, and
        # what was written with them (_NO_INSTRUCTION: nothing added).
        self._instruction_base: Any = None
        self._instruction_written: Any = _NO_INSTRUCTION
        self._warned_instruction_alone = False
        # Summaries being written and on_context_updated callbacks: cancelled when the call ends.
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._skip_tts: bool | None = None
        self._in_thought = False
        self._turn_completion: TurnCompletionFilter | None = None
        self._speculation_gate: SpeculationGate | None = None
        if self._pipecat_subclass:
            # Its frames always pass the gate (as in Pipecat), which also applies skip_tts
            # and the response hooks to the frames it pushes itself (see push_frame).
            self._speculation_gate = SpeculationGate(f"{self}::SpeculationGate")
        self._llm_adapter: BaseLLMAdapter[Any] | None = None
        # Pipecat 1.14 events: (service, [FunctionCallFromLLM]) / (service) after a timeout.
        self._register_event_handler("on_function_calls_started")
        self._register_event_handler("on_function_calls_cancelled")
        self._register_event_handler("on_completion_timeout")

    # ------------------------------------------------------------------ settings

    @property
    def settings(self) -> LLMSettings:
        """The current settings (store object; change it with an ``LLMUpdateSettingsFrame``)."""
        return self._settings

    async def _update_settings(self, delta: LLMSettings) -> dict[str, Any]:
        """Pipecat's hook for a settings update: a subclass written for Pipecat overrides it
        (calling ``super()``) and acts on the changed fields it returns. Every
        ``LLMUpdateSettingsFrame`` for such a subclass goes through it."""
        return await self.update_settings(delta)

    def get_llm_adapter(self) -> BaseLLMAdapter[Any]:
        """The adapter of :attr:`adapter_class` (made on first use): a custom service builds
        its request with ``await self.get_llm_adapter().get_llm_invocation_params(context,
        system_instruction=...)``."""
        adapter = self._llm_adapter
        if adapter is None:
            adapter = self._llm_adapter = self.adapter_class()
        return adapter

    def create_llm_specific_message(self, message: Any) -> LLMSpecificMessage:
        """A context message only this service's provider reads."""
        return self.get_llm_adapter().create_llm_specific_message(message)

    async def set_prompt_caching(self, enable: bool) -> bool:
        """Turn prompt caching on or off (an ``LLMEnablePromptCachingFrame``); False when this
        service has no such setting (the frame then goes on)."""
        return False

    async def update_settings(self, delta: LLMSettings) -> dict[str, Any]:
        """Merge ``delta``; the next completion uses it. Returns what changed (old values)."""
        changed = self._settings.apply_update(delta)
        if "model" in changed and isinstance(self._settings.model, str):
            self.set_model_name(self._settings.model)
        if changed.keys() & _TURN_COMPLETION_FIELDS:
            await self._update_turn_completion("system_instruction" in changed)
        if changed:
            logger.debug("%s: settings changed: %s", self, sorted(changed))
        return changed

    def _thinking_default_to_send(
        self, default: dict[str, Any] | None, *, provider: str, settings_fields: str
    ) -> dict[str, Any] | None:
        """What to add to a request that configures no thinking: ``default`` (the model's
        lowest thinking setting, from the service's table; None for a model it lists none for),
        or None when ``use_provider_thinking_default`` is set.

        The outcome is logged the first time a model is asked for this way (and again after the
        model or the setting changes): at INFO when a setting is sent, at DEBUG when the
        provider's default is left in force. ``settings_fields`` names the settings a bot uses
        to choose the thinking itself, for the log line.
        """
        model = self.model_name or ""
        provider_default = self._settings.use_provider_thinking_default is True
        if self._thinking_default_logged != (model, provider_default):
            self._thinking_default_logged = (model, provider_default)
            if provider_default:
                logger.debug(
                    "%s: use_provider_thinking_default is on: no thinking setting is sent, so "
                    "%s thinks as %s decides by default",
                    self,
                    model,
                    provider,
                )
            elif default is not None:
                logger.info(
                    "%s: %s gets its lowest thinking setting (%s) to answer quickly; for more "
                    "reasoning set %s in %s.Settings, or use_provider_thinking_default=True "
                    "to leave it to %s",
                    self,
                    model,
                    json.dumps(default, sort_keys=True),
                    settings_fields,
                    type(self).__name__,
                    provider,
                )
        return None if provider_default else default

    async def _update_turn_completion(self, instruction_changed: bool) -> None:
        """Switch the marker protocol on or off, or follow a new config or instruction."""
        # The async-tool instructions go back on at the next completion, after these.
        self._set_instruction_addons(())
        settings = self._settings
        current = self._turn_completion
        if settings.filter_incomplete_user_turns is not True:
            if current is not None:
                self._turn_completion = None
                await current.close()
                if not instruction_changed:
                    settings.system_instruction = current.base_instruction
                logger.info("%s: incomplete turn filtering disabled", self)
            return
        config = settings.user_turn_completion_config
        if not isinstance(config, UserTurnCompletionConfig):
            config = UserTurnCompletionConfig()
        if current is None:
            current = TurnCompletionFilter(self, config, settings.system_instruction)
            self._turn_completion = current
            logger.info("%s: incomplete turn filtering enabled", self)
        current.config = config
        if instruction_changed:
            current.base_instruction = settings.system_instruction
        settings.system_instruction = current.compose_instruction()

    @property
    def filter_incomplete_user_turns(self) -> bool:
        """Whether the turn-completion marker protocol is on."""
        return self._turn_completion is not None

    # ------------------------------------------------------------------ output

    async def stop_ttfb_metrics(self) -> float | None:
        """As the base does; the inference's first output also starts the wait for its
        first answer token (``TTFATMetricsData``)."""
        started = self._ttfb_start
        ttfb = await super().stop_ttfb_metrics()
        if started is not None and ttfb is not None:
            self._ttfat_pending = (started, ttfb)
        return ttfb

    async def tool_call_began(self) -> None:
        """A provider's stream shows a tool call: for the time to first answer token, an
        answer that is a tool call begins here (a no-op after the first answer token)."""
        if self._ttfat_pending is not None:
            await self._first_answer_token()

    async def _first_answer_token(self) -> None:
        """Report the time to the first answer token of this inference (once)."""
        pending = self._ttfat_pending
        if pending is None:
            return
        self._ttfat_pending = None
        started, ttfb = pending
        ttfat = max(self.clock.now() - started, ttfb)
        await self.push_metrics(
            TTFATMetricsData(
                processor=self.name,
                model=self.model_name,
                ttfat=ttfat,
                ttfb=ttfb,
                thinking_time=ttfat - ttfb,
            )
        )

    async def push_llm_text(self, text: str) -> None:
        """Push a piece of the model's answer (through the turn-completion filter when on)."""
        if self._ttfat_pending is not None and text:
            await self._first_answer_token()
        if self._turn_completion is None:
            await self.push_frame(self.llm_text_frame(text))
        else:
            await self._turn_completion.text(text)

    async def _push_llm_text(self, text: str) -> None:
        """Pipecat's name of :meth:`push_llm_text`."""
        await self.push_llm_text(text)

    async def start_llm_usage_metrics(self, tokens: LLMTokenUsage) -> None:
        """Report the tokens a completion used (``LLMUsageMetricsData``, with usage metrics
        on), as Pipecat's services do."""
        if self.usage_metrics_enabled:
            await self.push_metrics(
                LLMUsageMetricsData(processor=self.name, model=self.model_name, value=tokens)
            )

    async def _completion_started(self) -> None:
        if self._turn_completion is not None:
            await self._turn_completion.response_started()

    async def _completion_ended(self) -> None:
        self._ttfat_pending = None  # an inference that answered nothing has no TTFAT
        if self._turn_completion is not None:
            await self._turn_completion.response_ended()

    def service_metadata_frame(self) -> LLMServiceMetadataFrame:
        return LLMServiceMetadataFrame(service_name=self.name)

    def llm_text_frame(self, text: str) -> LLMTextFrame:
        """A frame of the model's answer, with the ``skip_tts`` the last
        ``LLMConfigureOutputFrame`` asked for."""
        frame = LLMTextFrame(text)
        if self._skip_tts is not None:
            frame.skip_tts = self._skip_tts
        return frame

    async def push_thought(
        self, text: str, *, append_to_context: bool = False, llm: str | None = None
    ) -> None:
        """Push reasoning text as a thought, opening one first if none is open (``text`` may be
        empty, to open one only).

        ``append_to_context`` and ``llm`` go on the ``LLMThoughtStartFrame`` when this call opens
        the thought: the assistant aggregator then keeps the thought in the context as a message
        for the ``llm`` adapter (e.g. Claude's signed thinking). While a thought is open they
        are not read.
        """
        if not self._in_thought:
            self._in_thought = True
            await self.push_frame(
                LLMThoughtStartFrame(append_to_context=append_to_context, llm=llm)
            )
        if text:
            await self.push_frame(LLMThoughtTextFrame(text))

    async def end_thought(self, signature: Any = None) -> None:
        """Close the open thought, if any; ``signature`` (the provider's, when it signs its
        thoughts) goes on the ``LLMThoughtEndFrame``."""
        if self._in_thought:
            self._in_thought = False
            await self.push_frame(LLMThoughtEndFrame(signature=signature))

    # ------------------------------------------------------------------ functions

    def register_function(
        self,
        function_name: str | None,
        handler: FunctionHandler,
        *,
        cancel_on_interruption: bool | None = None,
        timeout_secs: float | None = None,
        cancellable_by_llm: bool | None = None,
    ) -> None:
        """Run ``handler`` when the model calls ``function_name`` (``None``: any function).

        Each option left ``None`` comes from the handler's ``@tool_options``, else its default:
        ``cancel_on_interruption`` True (an interruption cancels the running call),
        ``timeout_secs`` the service's ``function_call_timeout_secs``, ``cancellable_by_llm``
        False.

        ``cancel_on_interruption=False`` makes the function asynchronous with an ``LLMContext``
        (Pipecat 1.14, see the module docstring): the model does not wait for it, its outcome
        reaches the context later and the model runs again to tell the caller. With the older
        ``OpenAILLMContext`` the model waits for it as for any call, and after an interruption
        it finishes in the background and is recorded in the context without a new reply.
        ``cancellable_by_llm=True`` (only with ``cancel_on_interruption=False``) advertises a
        ``cancel_<function_name>`` tool with an ``LLMContext`` for as long as the function is
        registered; the model calls it to stop a running call.
        """
        self._functions[function_name] = self._make_registration(
            function_name, handler, cancel_on_interruption, timeout_secs, cancellable_by_llm
        )

    def _make_registration(
        self,
        function_name: str | None,
        handler: FunctionHandler,
        cancel_on_interruption: bool | None,
        timeout_secs: float | None,
        cancellable_by_llm: bool | None,
        options_from: object = None,
    ) -> _Registration:
        """Options resolved as Pipecat does: explicit argument, then ``@tool_options`` on
        the handler (or on ``options_from``), then the default."""
        options = options_of(handler if options_from is None else options_from)
        if cancel_on_interruption is None:
            cancel_on_interruption = options.cancel_on_interruption if options else True
        if timeout_secs is None and options is not None:
            timeout_secs = options.timeout_secs
        if cancellable_by_llm is None:
            cancellable_by_llm = options.cancellable_by_llm if options else False
        if cancellable_by_llm and cancel_on_interruption:
            if function_name not in self._warned_options:  # a schema's handler: each request
                self._warned_options.add(function_name)
                logger.warning(
                    "%s: %r sets cancellable_by_llm=True with cancel_on_interruption=True; the "
                    "model cannot cancel a call it is waiting for, so it is ignored (pair it "
                    "with cancel_on_interruption=False)",
                    self,
                    function_name,
                )
            cancellable_by_llm = False
        if cancellable_by_llm and function_name is None:
            logger.warning("%s: cancellable_by_llm needs a function name; ignored", self)
            cancellable_by_llm = False
        return _Registration(handler, cancel_on_interruption, timeout_secs, cancellable_by_llm)

    def unregister_function(self, function_name: str | None) -> None:
        self._functions.pop(function_name, None)

    def register_direct_function(
        self,
        handler: DirectFunction,
        *,
        cancel_on_interruption: bool | None = None,
        timeout_secs: float | None = None,
    ) -> None:
        """Run the direct function ``handler`` when the model calls it by its name.

        Deprecated in Pipecat 1.14 (list the function in ``LLMContext(tools=[...])`` instead,
        which both advertises and registers it); this only registers it.
        """
        warnings.warn(
            "LLMService.register_direct_function is deprecated; list the function in "
            "LLMContext(tools=[...]) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        wrapper = DirectFunctionWrapper(handler)
        self._functions[wrapper.name] = self._make_registration(
            wrapper.name,
            wrapper.invoke,
            cancel_on_interruption,
            timeout_secs,
            None,
            options_from=handler,
        )

    def unregister_direct_function(self, handler: DirectFunction) -> None:
        """Remove what :meth:`register_direct_function` registered (deprecated, as there)."""
        warnings.warn(
            "LLMService.unregister_direct_function is deprecated; push an LLMSetToolsFrame "
            "without the function instead",
            DeprecationWarning,
            stacklevel=2,
        )
        self._functions.pop(DirectFunctionWrapper(handler).name, None)

    def has_function(self, function_name: str) -> bool:
        return function_name in self._functions or None in self._functions

    @property
    def accepts_intermediate_function_call_results(self) -> bool:
        """Whether a tool's progress reports (``result_callback(..., properties=
        FunctionCallResultProperties(is_final=False))``) reach the model (Pipecat 1.14).

        True here: a text LLM service writes them into an ``LLMContext`` as ``intermediate``
        messages. A service that returns False drops them with a warning (the frame is still
        broadcast for observers).
        """
        return True

    def _registration(self, context: ChatContext, name: str) -> _Registration | None:
        found = self._functions.get(name)
        if found is not None:
            return found
        for schema in context.function_schemas():
            if schema.name == name and schema.handler is not None:
                return self._schema_registration(schema, schema.handler)
        if isinstance(context, LLMContext):
            for schema in context.builtin_tools:
                if schema.name == name and schema.handler is not None:
                    return _Registration(schema.handler, builtin=True)
        return self._functions.get(None)

    def _schema_registration(
        self, schema: FunctionSchema, handler: FunctionHandler
    ) -> _Registration:
        """The registration of a handler carried by an advertised schema."""
        options = options_of(handler)
        if options is None:
            return _Registration(handler)
        return self._make_registration(schema.name, handler, None, None, None)

    # ------------------------------------------------------------------ aggregators

    def create_context_aggregator(
        self,
        context: ChatContext,
        *,
        user_params: LLMUserAggregatorParams | None = None,
        assistant_params: LLMAssistantAggregatorParams | None = None,
    ) -> LLMContextAggregatorPair:
        """The user/assistant aggregator pair sharing ``context``: ``.user()``, ``.assistant()``.

        The older API; with an ``LLMContext`` build ``LLMContextAggregatorPair`` from
        ``llm_response_universal`` instead (1.14 style) to get its params and events.
        """
        from callpipe.processors.aggregators.llm_response import LLMContextAggregatorPair

        return LLMContextAggregatorPair(
            context, user_params=user_params, assistant_params=assistant_params
        )

    # ------------------------------------------------------------------ frames

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if self._turn_completion is not None:
            await self._turn_completion.observe(frame)
        if self._pipecat_subclass:
            await self._prepare_for_subclass(frame, direction)
            return
        if await self.handle_lifecycle(frame, direction):
            return
        if isinstance(frame, _TURN_STATE_FRAMES):
            await self._follow_turns(frame)
        if isinstance(frame, LLMContextFrame):
            if frame.speculation and self._speculation_gate is None:
                self._speculation_gate = SpeculationGate(f"{self}::SpeculationGate")
            if self._speculation_gate is not None:
                self._speculation_gate.begin_speculation(frame.speculation)
            await self._run_context(frame.context, speculative=frame.speculation)
        elif isinstance(frame, OpenAILLMContextFrame):
            await self._run_context(frame.context)
        elif isinstance(frame, EagerEndOfTurnCancelFrame):
            await self._withdraw_speculation(frame, direction)
        elif isinstance(frame, LLMMessagesFrame):
            await self._run_context(OpenAILLMContext(frame.messages))
        elif isinstance(frame, LLMContextSummaryRequestFrame):
            self._start_summary(frame)
        elif isinstance(frame, LLMConfigureOutputFrame):
            self._skip_tts = frame.skip_tts
        elif isinstance(frame, LLMEnablePromptCachingFrame):
            if not await self.set_prompt_caching(frame.enable):
                await self.push_frame(frame, direction)
        elif isinstance(frame, LLMUpdateSettingsFrame):
            delta = delta_from_frame(frame, self.Settings, self)
            if delta is None:
                await self.push_frame(frame, direction)
            else:
                await self.update_settings(delta)
        else:
            await self.push_frame(frame, direction)

    async def _prepare_for_subclass(self, frame: Frame, direction: FrameDirection) -> None:
        """The base's part of a frame for a subclass written for Pipecat, which runs the model
        itself and pushes the frames it does not consume: nothing is pushed or run here.

        The service starts, stops and cancels; an ``LLMContextFrame`` opens or closes the
        speculation and gets the service's cancel tools and instructions; settings updates
        (through :meth:`_update_settings`), ``LLMConfigureOutputFrame``, summary requests and
        a withdrawn eager end of turn are handled as for callpipe's providers."""
        if isinstance(frame, StartFrame):
            await self._start_service(frame)  # metadata: once the StartFrame has gone on
        elif isinstance(frame, EndFrame):
            await self._stop_service(frame)
        elif isinstance(frame, CancelFrame):
            await self._cancel_service(frame)
        elif isinstance(frame, _TURN_STATE_FRAMES):
            await self._follow_turns(frame)
        elif isinstance(frame, LLMContextFrame):
            if self._speculation_gate is not None:
                self._speculation_gate.begin_speculation(frame.speculation)
            self._prepare_request(frame.context)
            if self._turn_completion is not None:
                self._turn_completion.context = frame.context
        elif isinstance(frame, EagerEndOfTurnCancelFrame):
            await self._withdraw_speculation(frame, direction, push=False)
        elif isinstance(frame, LLMContextSummaryRequestFrame):
            self._start_summary(frame)
        elif isinstance(frame, LLMConfigureOutputFrame):
            self._skip_tts = frame.skip_tts
        elif isinstance(frame, LLMUpdateSettingsFrame):
            delta = delta_from_frame(frame, self.Settings, self)
            if delta is not None:
                await self._update_settings(delta)
        elif isinstance(frame, ServiceSwitcherRequestMetadataFrame) and frame.service is self:
            await self.broadcast_service_metadata()

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        gate = self._speculation_gate
        if gate is None:
            await super().push_frame(frame, direction)
            return
        if self._pipecat_subclass and direction is FrameDirection.DOWNSTREAM:
            await self._subclass_output(frame)
        for gated, gated_direction in gate.process(frame, direction):
            await super().push_frame(gated, gated_direction)
            if self._pipecat_subclass and isinstance(gated, StartFrame):
                await self.broadcast_service_metadata()  # after the StartFrame, as in Pipecat

    async def _subclass_output(self, frame: Frame) -> None:
        """A frame a subclass written for Pipecat pushes itself: its replies' text gets the
        ``skip_tts`` of the last ``LLMConfigureOutputFrame``, and a reply's start and end
        frames open and close it for the turn-completion filter (which may push the text it
        held before the end frame) and the time to first answer token."""
        if isinstance(frame, LLMTextFrame):
            if self._skip_tts is not None:
                frame.skip_tts = self._skip_tts
        elif isinstance(frame, LLMFullResponseStartFrame):
            await self._completion_started()
        elif isinstance(frame, LLMFullResponseEndFrame):
            await self._completion_ended()

    async def _withdraw_speculation(
        self, frame: EagerEndOfTurnCancelFrame, direction: FrameDirection, *, push: bool = True
    ) -> None:
        """The eager end of turn was withdrawn: drop its queued run, cancel the one streaming
        (tokens no one will hear), and let the gate drop what it held. ``push=False``: the
        frame is left to a subclass written for Pipecat, which pushes it on itself."""
        gate = self._speculation_gate
        if gate is None:
            if push:
                await self.push_frame(frame, direction)
            return
        speculative = [
            item
            for item in self._queue
            if isinstance(item[0], LLMContextFrame) and item[0].speculation
        ]
        for item in speculative:
            self._queue.remove(item)
        current = self._current
        worker = self._worker
        stopped = False
        if (
            gate.is_speculating
            and isinstance(current, LLMContextFrame)
            and current.speculation
            and worker is not None
            and worker is not asyncio.current_task()
        ):
            logger.debug("%s: eager end of turn withdrawn; cancelling its completion", self)
            self._worker = None
            self._current = None
            worker.cancel()
            await self._resume_after_interruption(worker)
            stopped = True
        if push:
            await self.push_frame(frame, direction)
        if stopped:
            gate.run_stopped()

    async def _run_context(self, context: ChatContext, *, speculative: bool = False) -> None:
        self._running_context = context
        try:
            await self._run_rounds(context, speculative)
        finally:
            self._running_context = None
        if self._run_owed is not None:
            # An asynchronous result came in after the last request of this run went out.
            await self._start_owed_run()

    async def _run_rounds(self, context: ChatContext, speculative: bool) -> None:
        if self._turn_completion is not None:
            self._turn_completion.context = context
        for _ in range(self._max_tool_rounds + 1):
            self._prepare_request(context)
            calls = await self.run_completion(context)
            if not calls:
                return
            if speculative:
                speculative = False
                confirmed = await self._context_for_speculative_tools(context)
                if confirmed is None:
                    return
                context = confirmed
                if self._turn_completion is not None:
                    self._turn_completion.context = context
            if not await self._run_tools(context, calls):
                return
        logger.warning("%s: stopped after %d tool rounds", self, self._max_tool_rounds)

    async def _run_tools(self, context: ChatContext, calls: list[ToolCall]) -> bool:
        """Run the calls of one response; whether the model should run again now."""
        if isinstance(context, LLMContext):
            registrations = [self._registration(context, call.name) for call in calls]
            if any(r is not None and not r.cancel_on_interruption for r in registrations):
                return await self._run_calls_with_async(context, calls, registrations)
        return await self.run_function_calls(context, calls)

    async def _context_for_speculative_tools(self, context: ChatContext) -> ChatContext | None:
        """A run on a provisional context asked for tools: the context to run them on, or
        None when the run stops here.

        Tools act outside the pipeline, so nothing may run for an unconfirmed turn: the
        speculation is withdrawn and the committed turn's own run calls them. A turn confirmed
        before the run got here makes them ordinary calls (as in Pipecat 1.14), on the
        conversation's own context: the reply goes on from their results rather than starting
        over, which would say its opening words twice."""
        gate = self._speculation_gate
        if gate is not None and gate.is_speculating:
            logger.debug("%s: speculative run wants tools; withdrawing it", self)
            await self.push_frame(EagerEndOfTurnCancelFrame(), FrameDirection.UPSTREAM)
            await self.push_frame(EagerEndOfTurnCancelFrame())
            return None
        if isinstance(context, ProvisionalLLMContext):
            return context.committed
        return context

    async def run_completion(self, context: Any) -> list[ToolCall]:
        """Stream one completion (pushing its frames); return the tool calls it asked for."""
        raise NotImplementedError

    # ------------------------------------------------------------------ out of band

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """One completion on ``context`` outside the pipeline: its text (None if it has none).

        Nothing is pushed and the service's state is not touched, so it may run while a turn
        streams. ``max_tokens`` replaces the configured output limit, ``system_instruction``
        the service's instruction (messages in ``context`` are sent as they are), and
        ``response_schema`` (a JSON schema) asks a provider that can for JSON matching it;
        services that cannot ignore it with a warning. Tool calls in the answer are not run.
        Provider errors raise.
        """
        raise NotImplementedError(f"run_inference() is not supported by {type(self).__name__}")

    def _check_response_schema(
        self, response_schema: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The schema to send, or None (with a warning when one was given but cannot be)."""
        if response_schema is not None and not self.supports_response_schema:
            logger.warning("%s: response_schema is not supported; ignored", self)
            return None
        return response_schema

    def _start_summary(self, request: LLMContextSummaryRequestFrame) -> None:
        """Write the requested summary in the background and broadcast the result."""

        async def run() -> None:
            result = await summarize_context(self, request)
            await self.broadcast_frame_instance(result)

        self._start_side_task(run(), "context-summary")

    def _start_side_task(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = self.create_task(coroutine, name)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _close_side_work(self) -> None:
        """The call ends: close the turn-completion filter, cancel the side tasks. Asynchronous
        function calls may still end until the cleanup (as in 1.14), but run the model no more."""
        self._ending = True
        self._run_owed = None
        if self._turn_completion is not None:
            await self._turn_completion.close()
        for task in list(self._side_tasks):
            await self.cancel_task(task)

    async def stop(self, frame: EndFrame) -> None:
        await self._close_side_work()
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        await self._close_side_work()
        await super().cancel(frame)

    async def _broadcast(self, frame_factory: Callable[[], Frame]) -> None:
        await self.push_frame(frame_factory(), FrameDirection.DOWNSTREAM)
        await self.push_frame(frame_factory(), FrameDirection.UPSTREAM)

    async def run_function_calls(
        self,
        function_calls: ChatContext | Sequence[FunctionCallFromLLM],
        calls: list[ToolCall] | None = None,
    ) -> bool:
        r"""Run the handlers, append the tool_calls message and the results to the context.

        Two forms. callpipe's, ``run_function_calls(context, calls)`` with the
        :class:`ToolCall`\ s of one response, returns whether the model should run again on
        the results (the caller runs it). Pipecat's, ``run_function_calls([FunctionCallFromLLM(
        function_name=..., tool_call_id=..., arguments=..., context=context), ...])`` from a
        subclass written for Pipecat, also starts that run: an ``LLMContextFrame`` with the
        context goes first in this service's queue, so its ``process_frame`` runs the model
        again once the current frame is done, before the frames that came meanwhile. It
        returns once the handlers have answered (a call registered with
        ``cancel_on_interruption=False`` goes on by itself, see the module docstring), and an
        interruption meanwhile cancels them as for callpipe's providers.
        """
        if calls is None:
            if isinstance(function_calls, Sequence):
                return await self._run_pipecat_function_calls(function_calls)
            raise TypeError("run_function_calls(context, calls): the calls are missing")
        if isinstance(function_calls, Sequence):
            raise TypeError("run_function_calls(function_calls) takes no second argument")
        context = function_calls
        started = [
            FunctionCallFromLLM(call.name, call.id, _loads_or_raw(call.arguments), context)
            for call in calls
        ]
        registrations = [self._registration(context, call.name) for call in calls]
        await self._announce_calls(started, registrations)
        tasks: list[asyncio.Task[_Outcome]] = []
        for call, info, registration in zip(calls, started, registrations, strict=True):
            cancel = registration is None or registration.cancel_on_interruption
            await self._broadcast(
                partial(
                    FunctionCallInProgressFrame,
                    function_name=call.name,
                    tool_call_id=call.id,
                    arguments=info.arguments,
                    cancel_on_interruption=cancel,
                )
            )
            run = partial(self._call_one, context, call, registration)
            if self._run_in_parallel or not tasks:
                tasks.append(asyncio.ensure_future(run()))
            else:  # run_in_parallel=False: each starts once the one before it has ended
                tasks.append(asyncio.ensure_future(_after(tasks[-1], run)))
        try:
            outcomes = await asyncio.gather(*(asyncio.shield(t) for t in tasks))
        except asyncio.CancelledError:
            await self._on_calls_interrupted(context, calls, tasks)
            raise
        self._append_calls(context, calls, outcomes)
        for call, info, outcome in zip(calls, started, outcomes, strict=True):
            if outcome.cancelled:
                continue  # announced by cancel_function_calls
            await self._broadcast_result(
                call.name,
                call.id,
                info.arguments,
                outcome.content,
                outcome.properties,
                outcome.error,
            )
        self._start_context_updated(calls, outcomes)
        # The model answers unless every result asked it not to (a cancelled call asks for
        # nothing: cancel_function_calls runs no inference).
        return any(
            not o.cancelled and (o.properties is None or o.properties.run_llm is not False)
            for o in outcomes
        )

    async def _run_pipecat_function_calls(
        self, function_calls: Sequence[FunctionCallFromLLM]
    ) -> bool:
        """Pipecat's form of :meth:`run_function_calls`: the calls of one response (they share
        its context) run as callpipe's, then the model runs again if the results ask for it."""
        if not function_calls:
            return False
        confirmed = await self._context_for_speculative_tools(function_calls[0].context)
        if confirmed is None:
            return False
        calls = [
            ToolCall(
                call.tool_call_id,
                call.function_name,
                call.arguments
                if isinstance(call.arguments, str)
                else json.dumps(call.arguments, default=str),
            )
            for call in function_calls
        ]
        await self.tool_call_began()
        if not await self._run_tools(confirmed, calls):
            return False
        # Next in line, as callpipe's own tool loop runs the model again before it takes the
        # frames queued meanwhile (an EndFrame waits for the answer).
        self._queue.appendleft((LLMContextFrame(context=confirmed), FrameDirection.DOWNSTREAM))
        if self._wakeup is not None:
            self._wakeup.set()
        return True

    async def _announce_calls(
        self, started: list[FunctionCallFromLLM], registrations: Sequence[_Registration | None]
    ) -> None:
        """``on_function_calls_started`` and ``FunctionCallsStartedFrame`` for the calls, less
        the service's own cancel tools (as in 1.14: they are internal)."""
        visible = [
            info
            for info, registration in zip(started, registrations, strict=True)
            if registration is None or not registration.builtin
        ]
        quiet = bool(started) and not visible
        if not quiet:
            await self._call_event_handler("on_function_calls_started", list(visible))
        if self._turn_completion is not None:
            await self._turn_completion.tool_calls_started()
        if not quiet:
            await self._broadcast(lambda: FunctionCallsStartedFrame(function_calls=list(visible)))

    def _start_context_updated(self, calls: list[ToolCall], outcomes: list[_Outcome]) -> None:
        """Run each result's ``on_context_updated`` in a task of its own (as Pipecat 1.14 does).

        Called once the results are in the context. The next completion does not wait for
        them, and a callback may wait on the pipeline (a frame coming back, the bot finishing
        its turn) without holding up this service's frames. Failures are logged; callbacks
        still running when the call ends are cancelled."""
        for call, outcome in zip(calls, outcomes, strict=True):
            callback = outcome.properties.on_context_updated if outcome.properties else None
            if callback is None:
                continue
            self._start_side_task(
                _run_callback(callback), f"{call.name}:{call.id}:on_context_updated"
            )

    @staticmethod
    def _append_calls(
        context: ChatContext, calls: list[ToolCall], outcomes: list[_Outcome]
    ) -> None:
        context.add_message(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call.as_message_entry() for call in calls],
            }
        )
        for call, outcome in zip(calls, outcomes, strict=True):
            context.add_message(
                {"role": "tool", "tool_call_id": call.id, "content": outcome.content}
            )
            note_function_call(
                call.name, _json_or_text(call.arguments), _json_or_text(outcome.content)
            )

    async def _on_calls_interrupted(
        self, context: ChatContext, calls: list[ToolCall], tasks: list[asyncio.Task[_Outcome]]
    ) -> None:
        """Cancel what may be cancelled; let the rest finish and record them afterwards."""
        keep = False
        cancelled: list[FunctionCallFromLLM] = []
        for call, task in zip(calls, tasks, strict=True):
            registration = self._registration(context, call.name)
            if registration is None or registration.cancel_on_interruption:
                task.cancel()
                if not task.done():
                    arguments = _loads_or_raw(call.arguments)
                    cancelled.append(FunctionCallFromLLM(call.name, call.id, arguments, context))
                    await self._broadcast(
                        partial(
                            FunctionCallCancelFrame, function_name=call.name, tool_call_id=call.id
                        )
                    )
            else:
                keep = True
                if registration.cancellable_by_llm and not task.done():
                    self._track_cancellable(
                        _RunningCall(
                            call.name, call.id, _loads_or_raw(call.arguments), context, task
                        )
                    )
        if cancelled:
            await self._call_event_handler("on_function_calls_cancelled", cancelled)
        if not keep:
            return

        async def record_later() -> None:
            outcomes: list[_Outcome] = []
            for call, task in zip(calls, tasks, strict=True):
                try:
                    outcomes.append(await task)
                except asyncio.CancelledError:
                    by_llm = call.id in self._cancelled_by_llm
                    self._cancelled_by_llm.discard(call.id)
                    reason = (
                        "cancelled at the model's request"
                        if by_llm
                        else "cancelled by interruption"
                    )
                    outcomes.append(_Outcome(json.dumps({"error": reason})))
            self._append_calls(context, calls, outcomes)
            self._start_context_updated(calls, outcomes)
            logger.debug("%s: recorded %d calls that outlived an interruption", self, len(calls))

        background = asyncio.ensure_future(record_later())
        self._background_calls.add(background)
        background.add_done_callback(self._background_calls.discard)

    # ------------------------------------------------------------------ cancel tools

    def _track_cancellable(self, running: _RunningCall) -> None:
        """A ``cancellable_by_llm`` call goes on after an interruption: advertise its cancel
        tool in the context until it ends."""
        self._llm_cancellable[running.tool_call_id] = running
        self._advertise_cancel_tool(running.context, running.name)

        def finished(_: asyncio.Task[_Outcome]) -> None:
            self._llm_cancellable.pop(running.tool_call_id, None)
            if not any(
                c.name == running.name and c.context is running.context
                for c in self._llm_cancellable.values()
            ):
                self._withdraw_cancel_tool(running.context, running.name)

        running.task.add_done_callback(finished)

    def _advertise_cancel_tool(self, context: ChatContext, target: str) -> None:
        if not isinstance(context, LLMContext):
            logger.debug("%s: cancel tools are advertised in an LLMContext only", self)
            return
        name = CANCEL_TOOL_PREFIX + target
        tools = context.tools
        current = tools.standard_tools if isinstance(tools, ToolsSchema) else []
        if any(schema.name == name for schema in current) or name in self._functions:
            if not any(schema is self._cancel_schemas.get(name) for schema in current):
                logger.warning(
                    "%s: %r is a tool of its own, so the model cannot cancel %s calls",
                    self,
                    name,
                    target,
                )
            return
        schema = self._cancel_tool_schema(target, self._cancel_tool_handler)
        self._cancel_schemas[name] = schema
        if isinstance(tools, ToolsSchema):
            tools.standard_tools.append(schema)
        else:
            context.set_tools([schema])

    def _withdraw_cancel_tool(self, context: ChatContext, target: str) -> None:
        schema = self._cancel_schemas.pop(CANCEL_TOOL_PREFIX + target, None)
        if schema is None or not isinstance(context, LLMContext):
            return
        tools = context.tools
        if isinstance(tools, ToolsSchema) and schema in tools.standard_tools:
            tools.standard_tools.remove(schema)
            if not tools.standard_tools and not tools.custom_tools:
                context.set_tools()

    @staticmethod
    def _cancel_tool_schema(target: str, handler: FunctionHandler) -> FunctionSchema:
        """``target``'s cancel tool, carrying the handler that runs it."""
        base = build_cancel_tool_schema(target)
        return FunctionSchema(base.name, base.description, base.properties, base.required, handler)

    @staticmethod
    def _pick_call_to_cancel(
        params: FunctionCallParams, target: str, running: list[_C]
    ) -> _C | dict[str, Any]:
        """The call a ``cancel_<target>`` call asks to stop, or the answer refusing it."""
        wanted = params.arguments.get("tool_call_id")
        if wanted:
            match = next((c for c in running if c.tool_call_id == wanted), None)
            if match is None:
                return {"cancelled": None, "reason": f"no running {target} call has that id"}
            return match
        if len(running) == 1:
            return running[0]
        if not running:
            return {"cancelled": None, "reason": f"no {target} call is running"}
        choices = "; ".join(
            f"{c.tool_call_id} (arguments {json.dumps(c.arguments, default=str)})" for c in running
        )
        return {
            "cancelled": None,
            "reason": f"{len(running)} {target} calls are running: {choices}. Call "
            f"{params.function_name} again with the tool_call_id of the one to stop.",
            "running": [
                {"tool_call_id": c.tool_call_id, "arguments": c.arguments} for c in running
            ],
        }

    async def _cancel_tool_handler(self, params: FunctionCallParams) -> dict[str, Any]:
        """The model called ``cancel_<name>``: stop that running call (or say why not)."""
        target = params.function_name.removeprefix(CANCEL_TOOL_PREFIX)
        running = [
            c for c in self._llm_cancellable.values() if c.name == target and not c.task.done()
        ]
        match = self._pick_call_to_cancel(params, target, running)
        if isinstance(match, dict):
            return match
        logger.debug("%s: the model cancels %s [%s]", self, target, match.tool_call_id)
        self._cancelled_by_llm.add(match.tool_call_id)
        match.task.cancel()
        await asyncio.wait([match.task])
        await self._broadcast(
            partial(FunctionCallCancelFrame, function_name=target, tool_call_id=match.tool_call_id)
        )
        await self._call_event_handler(
            "on_function_calls_cancelled",
            [FunctionCallFromLLM(target, match.tool_call_id, match.arguments, match.context)],
        )
        return {"cancelled": match.tool_call_id, "function_name": target}

    # ------------------------------------------------------------------ asynchronous calls

    def _prepare_request(self, context: ChatContext) -> None:
        """Before each completion: with an ``LLMContext``, the cancel tools and the async-tool
        instructions for what is registered now; a run owed for a result is settled (this
        request carries it)."""
        if not isinstance(context, LLMContext):
            if self._instruction_written is not _NO_INSTRUCTION:
                self._set_instruction_addons(())
            return
        owed = self._run_owed
        if owed is not None and (
            owed is context
            or (isinstance(context, ProvisionalLLMContext) and context.committed is owed)
        ):
            self._run_owed = None
        registered = self._registered_functions(context)
        taken = {schema.name for schema in context.function_schemas()}
        cancel_tools: list[FunctionSchema] = []
        for name, registration in registered.items():
            if name is None or not self._is_cancellable(registration):
                continue
            tool = cancel_tool_name(name)
            if tool in registered or tool in taken:
                if tool not in self._warned_cancel_collisions:
                    self._warned_cancel_collisions.add(tool)
                    logger.warning(
                        "%s: %r is cancellable but %r is a function of its own, so the model "
                        "cannot stop %s calls; rename one of them",
                        self,
                        name,
                        tool,
                        name,
                    )
                continue
            schema = self._builtin_cancel_tools.get(tool)
            if schema is None:
                schema = self._cancel_tool_schema(name, self._cancel_async_call_handler)
                self._builtin_cancel_tools[tool] = schema
            cancel_tools.append(schema)
        context.set_builtin_tools(cancel_tools)
        addons: list[str] = []
        if cancel_tools:
            addons.append(ASYNC_TOOL_CANCELLATION_INSTRUCTIONS)
        if any(not r.cancel_on_interruption for r in registered.values()):
            addons.append(async_tool_messages.ASYNC_TOOL_INSTRUCTIONS)
        self._set_instruction_addons(tuple(addons))
        if addons and self._instruction_written is not _NO_INSTRUCTION:
            self._warn_if_instruction_alone(context)

    def _registered_functions(self, context: LLMContext) -> dict[str | None, _Registration]:
        """What may run on ``context``: the registered functions and the handlers its
        advertised schemas carry (a registration wins, as in :meth:`_registration`)."""
        registered: dict[str | None, _Registration] = dict(self._functions)
        for schema in context.function_schemas():
            if schema.handler is not None and schema.name not in registered:
                registered[schema.name] = self._schema_registration(schema, schema.handler)
        return registered

    def _is_cancellable(self, registration: _Registration) -> bool:
        """Whether the model may cancel the function's calls (it opted in, or the deprecated
        ``enable_async_tool_cancellation`` covers every asynchronous one)."""
        if registration.builtin:
            return False
        return registration.cancellable_by_llm or (
            self._enable_async_tool_cancellation and not registration.cancel_on_interruption
        )

    def _set_instruction_addons(self, addons: tuple[str, ...]) -> None:
        """Write ``settings.system_instruction`` as its base with ``addons`` appended.

        The base is what the instruction was before they were added, or whatever replaced it
        since (a settings update, the turn-completion instructions): anything other than what
        was written here last."""
        settings = self._settings
        current = settings.system_instruction
        if self._instruction_written is _NO_INSTRUCTION:
            if not addons:
                return
            base = current
        elif current == self._instruction_written:
            base = self._instruction_base
        else:
            base = current
        if not addons:
            settings.system_instruction = base
            self._instruction_base = None
            self._instruction_written = _NO_INSTRUCTION
            return
        parts = [base] if isinstance(base, str) and base else []
        composed = "\n\n".join([*parts, *addons])
        self._instruction_base = base
        self._instruction_written = composed
        if composed != current:
            settings.system_instruction = composed
            logger.debug("%s: system instruction composed with the async-tool instructions", self)

    def _warn_if_instruction_alone(self, context: LLMContext) -> None:
        """Once: the async-tool instructions are the whole system instruction while the
        context opens with a system message of its own."""
        if self._warned_instruction_alone or self._instruction_base:
            return
        first = context.messages[0] if context.messages else None
        if isinstance(first, dict) and first.get("role") == "system":
            self._warned_instruction_alone = True
            logger.warning(
                "%s: no system_instruction is set, so the async-tool instructions are sent as "
                "the system instruction on their own; services that send one system prompt "
                "(Anthropic, AWS Bedrock) then leave out the context's system message. Set "
                "the prompt as the service's system_instruction",
                self,
            )

    async def _run_calls_with_async(
        self,
        context: LLMContext,
        calls: list[ToolCall],
        registrations: list[_Registration | None],
    ) -> bool:
        """One response's calls, at least one asynchronous (1.14). All of them go into the
        context now, the asynchronous ones with a ``started`` message, the others with an
        ``IN_PROGRESS`` placeholder; the synchronous ones are waited for here, the others end
        in the background. Returns whether the model should run again now."""
        started = [
            FunctionCallFromLLM(call.name, call.id, _loads_or_raw(call.arguments), context)
            for call in calls
        ]
        await self._announce_calls(started, registrations)
        batch = _Batch({call.id for call in calls})
        context.add_message(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call.as_message_entry() for call in calls],
            }
        )
        for call, registration in zip(calls, registrations, strict=True):
            if registration is not None and not registration.cancel_on_interruption:
                context.add_message(async_tool_messages.build_started_message(call.id))
            else:
                context.add_message(
                    {"role": "tool", "tool_call_id": call.id, "content": IN_PROGRESS}
                )
        waited: list[tuple[ToolCall, FunctionCallFromLLM, asyncio.Task[_Outcome]]] = []
        unstarted = list(zip(calls, started, registrations, strict=True))
        try:
            await self._start_calls(context, batch, unstarted, waited)
            outcomes = await asyncio.gather(*(asyncio.shield(t) for _, _, t in waited))
        except asyncio.CancelledError:
            await self._interrupt_calls(context, batch, waited, unstarted)
            raise
        for (call, info, _), outcome in zip(waited, outcomes, strict=True):
            await self._settle_waited_call(context, batch, call, info, outcome)
        if self._run_owed is context:
            self._run_owed = None
            return True
        return False

    async def _start_calls(
        self,
        context: LLMContext,
        batch: _Batch,
        unstarted: list[tuple[ToolCall, FunctionCallFromLLM, _Registration | None]],
        waited: list[tuple[ToolCall, FunctionCallFromLLM, asyncio.Task[_Outcome]]],
    ) -> None:
        """Announce each call in progress and start it (in order, or each after the one before
        with ``run_in_parallel=False``); a started call leaves ``unstarted``, a synchronous one
        joins ``waited``."""
        group_id = str(uuid.uuid4())
        previous: asyncio.Task[Any] | None = None
        while unstarted:
            call, info, registration = unstarted[0]
            asynchronous = registration is not None and not registration.cancel_on_interruption
            await self._broadcast(
                partial(
                    FunctionCallInProgressFrame,
                    function_name=call.name,
                    tool_call_id=call.id,
                    arguments=info.arguments,
                    cancel_on_interruption=not asynchronous,
                    group_id=group_id,
                )
            )
            task: asyncio.Task[Any]
            if registration is not None and asynchronous:
                running = _AsyncCall(
                    call.name, call.id, call.arguments, info.arguments, context, registration, batch
                )
                self._async_calls[call.id] = running
                run_async = partial(self._run_async_call, running)
                if self._run_in_parallel or previous is None:
                    task = self.create_task(run_async(), f"{call.name}:{call.id}")
                else:
                    task = self.create_task(_after(previous, run_async), f"{call.name}:{call.id}")
                running.task = task
            else:
                run = partial(self._call_one, context, call, registration)
                if self._run_in_parallel or previous is None:
                    task = asyncio.ensure_future(run())
                else:
                    task = asyncio.ensure_future(_after(previous, run))
                waited.append((call, info, task))
            unstarted.pop(0)
            previous = task

    async def _settle_waited_call(
        self,
        context: LLMContext,
        batch: _Batch,
        call: ToolCall,
        info: FunctionCallFromLLM,
        outcome: _Outcome,
    ) -> None:
        """A synchronous call of a batch with asynchronous ones has ended."""
        _set_tool_content(context, call.id, outcome.content)
        note_function_call(call.name, _json_or_text(call.arguments), _json_or_text(outcome.content))
        if outcome.cancelled:
            # Announced by cancel_function_calls, which runs no inference (1.14).
            batch.pending.discard(call.id)
            return
        await self._broadcast_result(
            call.name, call.id, info.arguments, outcome.content, outcome.properties, outcome.error
        )
        self._start_context_updated([call], [outcome])
        batch.pending.discard(call.id)
        if _wants_run(outcome.properties, batch.pending):
            self._run_owed = context

    async def _interrupt_calls(
        self,
        context: LLMContext,
        batch: _Batch,
        waited: list[tuple[ToolCall, FunctionCallFromLLM, asyncio.Task[_Outcome]]],
        unstarted: list[tuple[ToolCall, FunctionCallFromLLM, _Registration | None]],
    ) -> None:
        """An interruption while such a batch started or its synchronous calls ran: those are
        cancelled (their placeholders say so), and so are calls not started yet; the
        asynchronous calls already started go on."""
        cancelled: list[FunctionCallFromLLM] = []
        stopped = [(call, info) for call, info, _ in unstarted]
        for call, info, task in waited:
            if task.done() and not task.cancelled():
                await self._settle_waited_call(context, batch, call, info, task.result())
            else:
                task.cancel()
                stopped.append((call, info))
        for call, info in stopped:
            batch.pending.discard(call.id)
            _set_tool_content(context, call.id, json.dumps({"error": "cancelled by interruption"}))
            cancelled.append(info)
            await self._broadcast(
                partial(FunctionCallCancelFrame, function_name=call.name, tool_call_id=call.id)
            )
        if cancelled:
            await self._call_event_handler("on_function_calls_cancelled", cancelled)

    async def _run_async_call(self, running: _AsyncCall) -> None:
        """Run an asynchronous call's handler; its outcome (or cancellation) ends the call."""
        registration = running.registration
        try:
            raw = running.raw_arguments
            arguments = json.loads(raw) if raw.strip() else {}
            if not isinstance(arguments, dict):
                raise ValueError("arguments are not a JSON object")
        except ValueError as exc:
            logger.warning("%s: bad arguments for %s: %s", self, running.name, exc)
            content = json.dumps({"error": f"invalid arguments: {exc}"})
            await self._finish_async_call(running, content, None, content=content, error=str(exc))
            return

        async def result_callback(
            result: Any, *, properties: FunctionCallResultProperties | None = None
        ) -> None:
            if running.settled:
                logger.warning(
                    "%s: result for %s [%s] ignored: the call has already ended",
                    self,
                    running.name,
                    running.tool_call_id,
                )
            elif properties is not None and not properties.is_final:
                await self._report_async_progress(running, result, properties)
            else:
                await self._finish_async_call(running, result, properties)

        params = self._function_call_params(
            running.name, running.tool_call_id, arguments, running.context, result_callback
        )
        logger.debug("%s: calling function %s (asynchronous)", self, running.name)
        timeout = registration.timeout_secs or self._function_call_timeout_secs
        try:
            returned = await asyncio.wait_for(registration.handler(params), timeout)
        except TimeoutError:
            if not running.settled:
                logger.warning(
                    "%s: function %s timed out after %.1fs; cancelled", self, running.name, timeout
                )
                await self._cancel_async_call(running, run_llm=True, reason="timed out")
            return
        except Exception as exc:
            logger.exception("%s: function %s failed", self, running.name)
            if not running.settled:
                message = f"{type(exc).__name__}: {exc}"
                content = json.dumps({"error": message})
                await self._finish_async_call(
                    running, content, None, content=content, error=message
                )
            return
        if not running.settled:
            await self._finish_async_call(running, returned, None)

    async def _report_async_progress(
        self, running: _AsyncCall, result: Any, properties: FunctionCallResultProperties
    ) -> None:
        """A progress report: an ``intermediate`` message (the result as JSON, as 1.14 writes
        it); the model runs on it unless ``run_llm`` says otherwise or another call of the
        response is still running. An empty report is ignored, and a service that does not
        take intermediate results drops it (both with a warning)."""
        if not self.accepts_intermediate_function_call_results:
            logger.warning(
                "%s: dropping the intermediate result of %s [%s]: %s does not take "
                "intermediate function call results",
                self,
                running.name,
                running.tool_call_id,
                type(self).__name__,
            )
            await self._broadcast_result(
                running.name, running.tool_call_id, running.arguments, result, properties
            )
            return
        if not _has_result(result):
            logger.warning(
                "%s: result_callback(is_final=False) without a result for %s [%s]; ignored",
                self,
                running.name,
                running.tool_call_id,
            )
            await self._broadcast_result(
                running.name, running.tool_call_id, running.arguments, result, properties
            )
            await self._result_arrived(running.context, wants_run=False)
            return
        content = _json_text(result)
        context = running.context
        context.add_message(
            async_tool_messages.build_intermediate_result_message(running.tool_call_id, content)
        )
        await self._broadcast_result(
            running.name, running.tool_call_id, running.arguments, result, properties
        )
        self._start_one_context_updated(running, properties)
        wants_run = _wants_run(properties, running.batch.pending - {running.tool_call_id})
        await self._result_arrived(context, wants_run=wants_run)

    async def _broadcast_result(
        self,
        name: str,
        tool_call_id: str,
        arguments: Any,
        content: Any,
        properties: FunctionCallResultProperties | None,
        error: str | None = None,
    ) -> None:
        """A call's result (or an async call's progress report) announced both ways."""
        await self._broadcast(
            partial(
                FunctionCallResultFrame,
                function_name=name,
                tool_call_id=tool_call_id,
                arguments=arguments,
                result=content,
                run_llm=properties.run_llm if properties else None,
                properties=properties,
                error=error,
            )
        )

    async def _finish_async_call(
        self,
        running: _AsyncCall,
        result: Any,
        properties: FunctionCallResultProperties | None,
        *,
        content: str | None = None,
        error: str | None = None,
    ) -> None:
        """The outcome: in place of the ``started`` message while nothing was said since,
        else a ``final`` message; then (by default, when the response's last call has ended)
        a run of the model to pass it on.

        As in 1.14 the result goes into the context as JSON (a text result too), ``COMPLETED``
        when it is empty, and an empty result asks for no run (a run already owed still
        starts). ``content``: the text to write instead (a failure's error object)."""
        running.settled = True
        self._async_calls.pop(running.tool_call_id, None)
        context = running.context
        if content is None:
            content = _async_result_text(result)
        if _result_deferred(context, running.tool_call_id):
            context.add_message(
                async_tool_messages.build_final_result_message(running.tool_call_id, content)
            )
        else:
            _set_tool_content(context, running.tool_call_id, content)
        note_function_call(running.name, running.arguments, _json_or_text(content))
        await self._broadcast_result(
            running.name, running.tool_call_id, running.arguments, result, properties, error
        )
        self._start_one_context_updated(running, properties)
        running.batch.pending.discard(running.tool_call_id)
        wants_run = _has_result(result) and _wants_run(properties, running.batch.pending)
        await self._result_arrived(context, wants_run=wants_run)

    async def _cancel_async_call(
        self, running: _AsyncCall, *, run_llm: bool, reason: str, notify: bool = True
    ) -> FunctionCallFromLLM | None:
        """End an asynchronous call without its outcome (timed out, or stopped): its handler
        is cancelled, a cancellation message goes into the context, then
        ``FunctionCallCancelFrame`` and (``notify``) ``on_function_calls_cancelled``.
        ``run_llm`` (a timeout) runs the model once the response's other calls have ended.
        Returns the call, as the event describes it (None: it had already ended)."""
        if running.settled:
            return None
        running.settled = True  # before cancelling: a result sent while unwinding is refused
        self._async_calls.pop(running.tool_call_id, None)
        task = running.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait([task])
        context = running.context
        context.add_message(async_tool_messages.build_cancelled_message(running.tool_call_id))
        note_function_call(running.name, running.arguments, {"error": reason})
        await self._broadcast(
            partial(
                FunctionCallCancelFrame,
                function_name=running.name,
                tool_call_id=running.tool_call_id,
                run_llm=run_llm,
            )
        )
        cancelled = FunctionCallFromLLM(
            running.name, running.tool_call_id, running.arguments, context
        )
        if notify:
            await self._call_event_handler("on_function_calls_cancelled", [cancelled])
        running.batch.pending.discard(running.tool_call_id)
        if run_llm and not running.batch.pending:
            await self._owe_run(context)
        return cancelled

    async def cancel_function_calls(
        self, *, reason: str = "cancelled"
    ) -> list[FunctionCallFromLLM]:
        """Cancel every function call in flight, whether or not it survives interruptions
        (Pipecat 1.14).

        Each running handler gets ``asyncio.CancelledError`` (a call queued behind another with
        ``run_in_parallel=False`` and not started yet is left to run), a
        ``FunctionCallCancelFrame`` goes both ways for each call, then
        ``on_function_calls_cancelled`` fires once with them all. The context records each as
        cancelled: an asynchronous call with a cancellation message, a call the model waits
        for with an error result. No inference runs for the cancellations. Called from a
        handler of one of the calls, that handler is cancelled last, once this returns.

        ``reason``: what triggered it, for the logs. Returns the calls that were cancelled.
        """
        current = asyncio.current_task()
        own: asyncio.Task[Any] | None = None
        cancelled: list[FunctionCallFromLLM] = []
        for waited in list(self._waited_calls.values()):
            if waited.cancelled:
                continue
            logger.debug(
                "%s: cancelling function call %s [%s] (%s)",
                self,
                waited.name,
                waited.tool_call_id,
                reason,
            )
            waited.cancelled = True  # before cancelling: a result sent while unwinding is refused
            if waited.task is current:
                own = waited.task
            else:
                waited.task.cancel()
                await asyncio.wait([waited.task])
            await self._broadcast(
                partial(
                    FunctionCallCancelFrame,
                    function_name=waited.name,
                    tool_call_id=waited.tool_call_id,
                )
            )
            cancelled.append(
                FunctionCallFromLLM(
                    waited.name, waited.tool_call_id, waited.arguments, waited.context
                )
            )
        for running in list(self._async_calls.values()):
            if running.settled:
                continue
            logger.debug(
                "%s: cancelling function call %s [%s] (%s)",
                self,
                running.name,
                running.tool_call_id,
                reason,
            )
            if running.task is not None and running.task is current:
                own = running.task
            ended = await self._cancel_async_call(
                running, run_llm=False, reason=reason, notify=False
            )
            if ended is not None:
                cancelled.append(ended)
        if cancelled:
            await self._call_event_handler("on_function_calls_cancelled", cancelled)
        if own is not None:
            own.cancel()
        return cancelled

    async def _cancel_async_call_handler(self, params: FunctionCallParams) -> dict[str, Any]:
        """The model called ``cancel_<name>`` (1.14's cancel tool): stop that running call."""
        target = params.function_name.removeprefix(CANCEL_TOOL_PREFIX)
        running = [
            c
            for c in self._async_calls.values()
            if c.name == target and not c.settled and self._is_cancellable(c.registration)
        ]
        match = self._pick_call_to_cancel(params, target, running)
        if isinstance(match, dict):
            logger.debug("%s: not cancelling %s: %s", self, target, match["reason"])
            return match
        logger.debug("%s: the model cancels %s [%s]", self, target, match.tool_call_id)
        await self._cancel_async_call(
            match, run_llm=False, reason="cancelled at the model's request"
        )
        return {"cancelled": match.tool_call_id, "function_name": target}

    def _start_one_context_updated(
        self, running: _AsyncCall, properties: FunctionCallResultProperties | None
    ) -> None:
        callback = properties.on_context_updated if properties else None
        if callback is not None:
            name = f"{running.name}:{running.tool_call_id}:on_context_updated"
            self._start_side_task(_run_callback(callback), name)

    async def _owe_run(self, context: LLMContext) -> None:
        """An asynchronous result wants the model to run: now, or once the run in progress
        has ended (if its last request went out before the result came)."""
        await self._result_arrived(context, wants_run=True)

    async def _result_arrived(self, context: LLMContext, *, wants_run: bool) -> None:
        """An asynchronous call reported (its outcome or a progress report): owe a run when it
        asks for one, and start an owed run (this one's or an earlier result's, held while
        someone spoke) unless a run is in progress, which starts it when it ends. As in 1.14,
        a result that asks for no run still makes the run an earlier one is owed."""
        if wants_run:
            self._run_owed = context
        if self._run_owed is not None and self._running_context is None:
            await self._start_owed_run()

    async def _start_owed_run(self) -> None:
        """Queue the owed run, unless someone is speaking: the caller's turn runs the model
        anyway, and the bot's reply has to be heard (and in the context) first."""
        context = self._run_owed
        if context is None or self._ending or self._user_speaking or self._bot_speaking:
            return
        self._run_owed = None
        queued = self._owed_frame
        if queued is not None and any(frame is queued for frame, _ in self._queue):
            return  # the run waiting in the queue sees this result too
        logger.debug("%s: running the model on an asynchronous function result", self)
        self._owed_frame = LLMContextFrame(context=context)
        await self.queue_frame(self._owed_frame)

    async def _follow_turns(self, frame: Frame) -> None:
        """Who is speaking, for the owed run; an interruption drops it (the caller's turn
        will run the model)."""
        if isinstance(frame, InterruptionFrame):
            self._run_owed = None
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._user_speaking = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_speaking = False
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            if self._run_owed is not None and self._running_context is None:
                await self._start_owed_run()

    def _function_call_params(
        self,
        name: str,
        tool_call_id: str,
        arguments: dict[str, Any],
        context: ChatContext,
        result_callback: FunctionCallResultCallback,
    ) -> FunctionCallParams:
        """A handler's params, with the worker running this service's pipeline, its
        ``app_resources`` and its runner (None when the service runs without a worker)."""
        worker = self.pipeline_worker
        return FunctionCallParams(
            name,
            tool_call_id,
            arguments,
            self,
            context,
            result_callback,
            pipeline_worker=worker,
            app_resources=worker.app_resources if worker is not None else None,
            worker_runner=worker.worker_runner if worker is not None else None,
        )

    async def _call_one(
        self, context: ChatContext, call: ToolCall, registration: _Registration | None
    ) -> _Outcome:
        if registration is None:
            logger.warning("%s: the model called unknown function %r", self, call.name)
            return _Outcome(json.dumps({"error": f"unknown function {call.name}"}))
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
            if not isinstance(arguments, dict):
                raise ValueError("arguments are not a JSON object")
        except ValueError as exc:
            logger.warning("%s: bad arguments for %s: %s", self, call.name, exc)
            return _Outcome(json.dumps({"error": f"invalid arguments: {exc}"}), error=str(exc))
        box = _ResultBox()
        current = asyncio.current_task()
        waited = (
            _WaitedCall(call.name, call.id, arguments, context, current)
            if current is not None
            else None
        )

        async def result_callback(
            result: Any, *, properties: FunctionCallResultProperties | None = None
        ) -> None:
            if waited is not None and waited.cancelled:
                logger.warning(
                    "%s: result for %s [%s] ignored: the call was cancelled",
                    self,
                    call.name,
                    call.id,
                )
            elif properties is not None and not properties.is_final:
                await self._progress_report_for_waited_call(
                    context, call, registration, arguments, result, properties
                )
            else:
                box.value = result
                box.properties = properties

        params = self._function_call_params(call.name, call.id, arguments, context, result_callback)
        logger.debug("%s: calling function %s", self, call.name)
        timeout = registration.timeout_secs or self._function_call_timeout_secs
        if waited is not None:
            self._waited_calls[call.id] = waited
        try:
            returned = await asyncio.wait_for(registration.handler(params), timeout)
        except TimeoutError:
            logger.warning("%s: function %s timed out after %.1fs", self, call.name, timeout)
            return _Outcome(json.dumps({"error": "timed out"}), error="timeout")
        except asyncio.CancelledError:
            if waited is None or not waited.cancelled:
                raise
            # cancel_function_calls stopped it: the call ends as cancelled (below).
            returned = None
        except Exception as exc:
            if waited is None or not waited.cancelled:
                logger.exception("%s: function %s failed", self, call.name)
                message = f"{type(exc).__name__}: {exc}"
                return _Outcome(json.dumps({"error": message}), error=message)
            returned = None
        finally:
            if waited is not None and self._waited_calls.get(call.id) is waited:
                del self._waited_calls[call.id]
        if waited is not None and waited.cancelled:
            # Whatever the handler did after it was cancelled (it may have caught the
            # CancelledError and returned), the call is over: the cancellation is its end.
            if current is not None and current.cancelling():
                current.uncancel()
            return _Outcome(_CANCELLED_CONTENT, cancelled=True)
        value = box.value if box.value is not _NO_RESULT else returned
        content = value if isinstance(value, str) else json.dumps(value, default=str)
        return _Outcome(content, box.properties)

    async def _progress_report_for_waited_call(
        self,
        context: ChatContext,
        call: ToolCall,
        registration: _Registration,
        arguments: Any,
        result: Any,
        properties: FunctionCallResultProperties,
    ) -> None:
        """A progress report from a call the model waits for: it never reaches the model (as
        in 1.14, it is for asynchronous calls on a service that takes them), so it is dropped
        with a warning; an asynchronous function's report is still broadcast, as 1.14 does."""
        if registration.cancel_on_interruption:
            logger.warning(
                "%s: result_callback(is_final=False) for %s [%s] ignored: progress reports "
                "are for asynchronous calls (cancel_on_interruption=False)",
                self,
                call.name,
                call.id,
            )
            return
        if not self.accepts_intermediate_function_call_results:
            why = f"{type(self).__name__} does not take intermediate function call results"
        else:
            why = "progress reports reach the model with an LLMContext only"
        logger.warning(
            "%s: dropping the intermediate result of %s [%s]: %s", self, call.name, call.id, why
        )
        await self._broadcast_result(call.name, call.id, arguments, result, properties)

    def _drop_async_calls(self) -> None:
        """The call ends: asynchronous calls still running are cancelled, nothing more is
        written or run for them."""
        self._run_owed = None
        for running in list(self._async_calls.values()):
            running.settled = True
            if running.task is not None:
                running.task.cancel()
        self._async_calls.clear()

    async def cleanup(self) -> None:
        for task in list(self._background_calls):
            task.cancel()
        self._drop_async_calls()
        await super().cleanup()


async def _after(previous: asyncio.Task[Any], run: Callable[[], Awaitable[_T]]) -> _T:
    """``run()`` once ``previous`` has ended, however it ended (sequential function calls)."""
    await asyncio.wait([previous])
    return await run()


async def _run_callback(callback: Callable[[], Awaitable[None]]) -> None:
    await callback()


def _wants_run(properties: FunctionCallResultProperties | None, others: set[str]) -> bool:
    """Whether a result asks the model to run: its ``run_llm``, else whether no other call of
    its response is still running (1.14's grouping)."""
    if properties is not None and properties.run_llm is not None:
        return properties.run_llm
    return not others


def _has_result(value: Any) -> bool:
    """Whether an asynchronous call reported something (1.14 tests the result's truth: None,
    ``""``, ``{}``, ``[]``, ``0`` and ``False`` are no result)."""
    try:
        return bool(value)
    except Exception:  # a value with no truth (e.g. an array): it is something
        return True


def _json_text(value: Any) -> str:
    """A result as 1.14 writes it into an async-tool message: JSON, a text result too (so
    ``"sunny"`` is written ``"\"sunny\""``), non-ASCII characters kept."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _async_result_text(value: Any) -> str:
    """An asynchronous call's outcome for the context: JSON (:func:`_json_text`), or
    ``"COMPLETED"`` when the handler gave none (:func:`_has_result`)."""
    return _json_text(value) if _has_result(value) else "COMPLETED"


def _set_tool_content(context: LLMContext, tool_call_id: str, content: str) -> None:
    """Replace the content of the ``tool`` message answering ``tool_call_id``."""
    for message in context.messages:
        if (
            not isinstance(message, LLMSpecificMessage)
            and message.get("role") == "tool"
            and message.get("tool_call_id") == tool_call_id
        ):
            message["content"] = content


def _result_deferred(context: LLMContext, tool_call_id: str) -> bool:
    """Whether an asynchronous call's outcome needs a ``final`` message of its own: the
    conversation moved on after its ``started`` message (a user, system or developer message
    came since, its own progress reports included), or that message is gone (the context was
    rebuilt). The model's own text and other calls' messages do not count."""
    after_started = False
    for message in context.messages:
        if isinstance(message, LLMSpecificMessage):
            continue
        if not after_started:
            after_started = (
                message.get("role") == "tool" and message.get("tool_call_id") == tool_call_id
            )
            continue
        if message.get("role") in ("tool", "assistant"):
            continue
        payload = async_tool_messages.parse_message(message)
        if payload is not None and payload.tool_call_id != tool_call_id:
            continue
        return True
    return not after_started


def _loads_or_raw(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments
