"""The shapes a flow is written in (``pipecat.flows.types`` in Pipecat 1.14).

A node is a :class:`NodeConfig` dict: what the model is told to do next (``task_messages``),
which tools it may call (``functions``: :class:`FlowsFunctionSchema` objects or plain async
"direct" functions whose first parameter is ``flow_manager``), what happens around it
(``pre_actions``/``post_actions``, :class:`ActionConfig` dicts) and how the context changes on
the way in (``context_strategy``).

A function handler returns its result for the model, or ``(result, next_node)``: a
:class:`NodeConfig` moves the flow there, ``None`` stays and lets the model answer,
:data:`NO_RESPONSE` stays and keeps the model quiet.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Required, TypedDict

from callpipe.adapters.llm.schemas.direct_function import (
    DirectFunctionWrapper,
    options_of,
    tool_options,
)
from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.errors import ConfigurationError
from callpipe.flows.exceptions import InvalidFunctionError

if TYPE_CHECKING:
    from callpipe.flows.manager import FlowManager


class FlowResult(TypedDict, total=False):
    """A customary result shape (``status``, optional ``error``); any JSON value will do."""

    status: str
    error: str


FlowArgs = dict[str, Any]
"""The model's arguments to a function (a fresh dict per call: handlers may change it)."""

LegacyActionHandler = Callable[[dict[str, Any]], Awaitable[None]]
"""An action handler that takes only the action dict (older style)."""

FlowActionHandler = Callable[[dict[str, Any], "FlowManager"], Awaitable[None]]
"""An action handler taking the action dict and the :class:`FlowManager`."""


class ActionConfig(TypedDict, total=False):
    """One pre/post action.

    ``type`` picks the handler: ``"tts_say"`` (speak ``text``), ``"end_conversation"`` (say
    the optional ``text``, then end the call), ``"function"`` (run ``handler`` once everything
    queued before it has gone through the pipeline) or a type registered with
    :meth:`FlowManager.register_action` (or given a ``handler`` here). For the two speaking
    actions, ``append_text_to_context=False`` keeps the words out of the LLM context. Other
    keys are passed to the handler as they are.
    """

    type: Required[str]
    handler: LegacyActionHandler | FlowActionHandler
    text: str
    append_text_to_context: bool


class ContextStrategy(Enum):
    """How the LLM context changes when a node is entered.

    ``APPEND`` (the default) adds the node's messages to the conversation; ``RESET`` replaces
    the conversation with them; ``RESET_WITH_SUMMARY`` replaces it with a summary the LLM
    writes (see :class:`ContextStrategyConfig`) followed by them.
    """

    APPEND = "append"
    RESET = "reset"
    RESET_WITH_SUMMARY = "reset_with_summary"


@dataclass
class ContextStrategyConfig:
    """A :class:`ContextStrategy` and, for ``RESET_WITH_SUMMARY``, the ``summary_prompt``
    (the instruction the LLM summarizes the conversation with)."""

    strategy: ContextStrategy
    summary_prompt: str | None = None

    def __post_init__(self) -> None:
        if self.strategy is ContextStrategy.RESET_WITH_SUMMARY and not self.summary_prompt:
            raise ConfigurationError("RESET_WITH_SUMMARY needs a summary_prompt")


class NodeConfig(TypedDict, total=False):
    """One step of a flow.

    Keys: ``task_messages`` (required: messages telling the model what to do now), ``name``
    (shown in logs and :attr:`FlowManager.current_node`), ``role_message`` (the bot's role as
    the LLM's system instruction; it stays until a later node sets another),
    ``role_messages`` (older form: messages put before the task messages), ``functions``,
    ``pre_actions`` (run before the context changes), ``post_actions`` (run after; with
    ``respond_immediately=False`` they wait until the bot has next spoken),
    ``context_strategy`` (this node's, instead of the manager's) and ``respond_immediately``
    (default True: the model answers as soon as the node is entered).
    """

    task_messages: Required[list[dict[str, Any]]]
    name: str
    role_message: str
    role_messages: list[dict[str, Any]]
    functions: list[FlowsFunctionSchema | FlowsDirectFunction]
    pre_actions: list[ActionConfig]
    post_actions: list[ActionConfig]
    context_strategy: ContextStrategyConfig
    respond_immediately: bool


class _NoResponse:
    def __repr__(self) -> str:
        return "NO_RESPONSE"


NO_RESPONSE = _NoResponse()
"""Second element of a handler's tuple: stay on this node and do not have the model answer
(the result is still written to the context)."""


class _TransitionInYaml:
    def __repr__(self) -> str:
        return "TRANSITION_IN_YAML"


TRANSITION_IN_YAML = _TransitionInYaml()
"""Second element of a handler's tuple for a flow built from a config: the config says where
to go. A node built in Python refuses it."""


ConsolidatedFunctionResult = tuple[Any, NodeConfig | None | _NoResponse]
"""``(result, next_node)`` as a handler returns it. A ``None`` result means "nothing to
report": the model is given an acknowledgement."""

ZeroArgFunctionHandler = Callable[[], Awaitable[Any]]
"""A handler without parameters (older style)."""

LegacyFunctionHandler = Callable[[FlowArgs], Awaitable[Any]]
"""A handler taking only the arguments (older style)."""

FlowFunctionHandler = Callable[[FlowArgs, "FlowManager"], Awaitable[Any]]
"""A handler taking the arguments and the :class:`FlowManager`."""

FunctionHandler = ZeroArgFunctionHandler | LegacyFunctionHandler | FlowFunctionHandler

FlowsDirectFunction = Callable[..., Awaitable[ConsolidatedFunctionResult]]
"""``async def f(flow_manager, **arguments) -> (result, next_node)``: the tool's name,
description and parameters are read from its signature and Google-style docstring."""


@dataclass
class FlowsFunctionSchema:
    """A tool of a node: its JSON-schema description and the ``handler`` that runs it.

    ``cancel_on_interruption`` (default False: a flow's functions usually must finish) and
    ``timeout_secs`` (instead of the LLM service's ``function_call_timeout_secs``) are the
    call options.
    """

    name: str
    description: str
    properties: dict[str, Any]
    required: list[str]
    handler: FunctionHandler
    cancel_on_interruption: bool = False
    timeout_secs: float | None = None

    def to_function_schema(self) -> FunctionSchema:
        """The plain :class:`FunctionSchema` (without the handler)."""
        return FunctionSchema(self.name, self.description, self.properties, self.required)


def flows_tool_options(
    *, cancel_on_interruption: bool = False, timeout_secs: float | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator giving a direct function its call options (defaults as for
    :class:`FlowsFunctionSchema`)."""
    decorator: Callable[[Callable[..., Any]], Callable[..., Any]] = tool_options(
        cancel_on_interruption=cancel_on_interruption, timeout_secs=timeout_secs
    )
    return decorator


def flows_direct_function(
    *, cancel_on_interruption: bool = False, timeout_secs: float | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The older name of :func:`flows_tool_options` (deprecated in Pipecat 1.5)."""
    warnings.warn(
        "flows_direct_function is deprecated; use flows_tool_options",
        DeprecationWarning,
        stacklevel=2,
    )
    return flows_tool_options(
        cancel_on_interruption=cancel_on_interruption, timeout_secs=timeout_secs
    )


class FlowsDirectFunctionWrapper:
    """A direct function with the schema read from it and its call options."""

    def __init__(self, function: Callable[..., Any]) -> None:
        try:
            spec = DirectFunctionWrapper(function, first_parameter="flow_manager")
        except (TypeError, NameError) as exc:
            raise InvalidFunctionError(str(exc)) from exc
        self.function = function
        self.name = spec.name
        self.description = spec.description
        self.properties = spec.properties
        self.required = spec.required
        options = options_of(function)
        self.cancel_on_interruption = options.cancel_on_interruption if options else False
        self.timeout_secs = options.timeout_secs if options else None

    @classmethod
    def validate_function(cls, function: Callable[..., Any]) -> None:
        """Raise :class:`InvalidFunctionError` if ``function`` cannot be a direct function."""
        cls(function)

    async def invoke(self, args: Mapping[str, Any], flow_manager: FlowManager) -> Any:
        return await self.function(flow_manager=flow_manager, **args)

    def to_function_schema(self) -> FunctionSchema:
        return FunctionSchema(self.name, self.description, self.properties, self.required)


def get_or_generate_node_name(node_config: NodeConfig) -> str:
    """The node's ``name``, or a fresh UUID when it has none."""
    return node_config.get("name") or str(uuid.uuid4())
