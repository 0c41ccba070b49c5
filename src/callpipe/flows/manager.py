"""FlowManager: moves a conversation through nodes (``pipecat.flows.manager`` in Pipecat 1.14).

Entering a node (``initialize(first_node)``, ``set_node_from_config(node)`` or a function
returning ``(result, next_node)``):

1. its ``pre_actions`` run;
2. its messages reach the context through the pipeline: an ``LLMMessagesAppendFrame``
   (``APPEND``) or ``LLMMessagesUpdateFrame`` (``RESET``, ``RESET_WITH_SUMMARY``), then an
   ``LLMSetToolsFrame`` with the node's functions and the global ones; ``role_message`` goes
   first as an ``LLMUpdateSettingsFrame`` (the LLM's system instruction, given in the mapping
   form so that any LLM's settings class takes it);
3. an ``LLMRunFrame`` makes the model answer (unless ``respond_immediately=False``);
4. its ``post_actions`` run (with ``respond_immediately=False``: once the bot has spoken).

The tools carry their handlers (``FunctionSchema.handler``), so the LLM service runs them
without ``register_function`` and a node's functions stop being callable once the next node's
tools replace them. A handler that raises does not end the call: the model is given
``{"status": "error", "error": ...}`` as the result and answers. A transition happens after
every function call the model asked for in that response has finished and been written to the
context, in a task of its own (pre-actions may wait for the pipeline).

``{{ key }}`` in ``role_message``, task message text and ``tts_say`` text is filled in from
:attr:`FlowManager.state` each time the node is entered (``{{ order.size }}`` walks into a
stored dict, ``\\{{ key }}`` stays as written); a key that is not there is a :class:`FlowError`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from callpipe.adapters.llm.schemas.direct_function import tool_options
from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.errors import ConfigurationError
from callpipe.flows.actions import ActionManager
from callpipe.flows.exceptions import (
    ActionError,
    FlowError,
    FlowInitializationError,
    FlowTransitionError,
    InvalidFunctionError,
)
from callpipe.flows.types import (
    NO_RESPONSE,
    TRANSITION_IN_YAML,
    ActionConfig,
    ContextStrategy,
    ContextStrategyConfig,
    FlowsDirectFunction,
    FlowsDirectFunctionWrapper,
    FlowsFunctionSchema,
    FunctionHandler,
    NodeConfig,
    get_or_generate_node_name,
)
from callpipe.frames.frames import (
    Frame,
    FunctionCallResultProperties,
    LLMMessagesAppendFrame,
    LLMMessagesUpdateFrame,
    LLMRunFrame,
    LLMSetToolsFrame,
    LLMUpdateSettingsFrame,
)
from callpipe.pipeline.llm_switcher import LLMSwitcher
from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.aggregators.llm_context import NOT_GIVEN, LLMContext, NotGiven
from callpipe.processors.aggregators.llm_response import LLMUserContextAggregator
from callpipe.services.llm_service import FunctionCallParams, LLMService
from callpipe.transports.base_transport import BaseTransport

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"(\\?)\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}")
_SUMMARY_TIMEOUT_SECS = 5.0


class _ContextAggregatorPair(Protocol):
    """What the manager needs of ``context_aggregator``: the user side, which holds the
    context (``LLMContextAggregatorPair`` of either API)."""

    def user(self) -> LLMUserContextAggregator: ...


@dataclass(slots=True)
class _NodeMessagesAppendFrame(LLMMessagesAppendFrame):
    """A node's messages: kept by an interruption, so the model never runs with the previous
    node's instructions and the new node's tools."""

    UNINTERRUPTIBLE = True


@dataclass(slots=True)
class _NodeMessagesUpdateFrame(LLMMessagesUpdateFrame):
    UNINTERRUPTIBLE = True


@dataclass(slots=True)
class _NodeToolsFrame(LLMSetToolsFrame):
    UNINTERRUPTIBLE = True


@dataclass
class _Transition:
    next_node: NodeConfig
    function_name: str


class FlowManager:
    """Runs a flow on a pipeline: ``FlowManager(worker=task, llm=llm,
    context_aggregator=aggregators)``, then ``await flow_manager.initialize(first_node)``.

    ``task`` is the older name of ``worker``. ``context_strategy`` is the default for nodes
    without their own. ``global_functions`` are offered at every node. ``transport`` is kept
    for handlers (:attr:`transport`).
    """

    def __init__(
        self,
        *,
        llm: LLMService | LLMSwitcher[Any],
        context_aggregator: _ContextAggregatorPair,
        worker: PipelineWorker | None = None,
        task: PipelineWorker | None = None,
        context_strategy: ContextStrategyConfig | None = None,
        transport: BaseTransport | None = None,
        global_functions: list[FlowsFunctionSchema | FlowsDirectFunction] | None = None,
    ) -> None:
        if worker is not None and task is not None:
            raise ConfigurationError("FlowManager: give 'worker' or 'task', not both")
        worker = worker or task
        if worker is None:
            raise ConfigurationError("FlowManager needs the pipeline's worker ('worker=')")
        self._worker = worker
        self._llm = llm
        self._context_aggregator = context_aggregator
        self._context_strategy = context_strategy or ContextStrategyConfig(ContextStrategy.APPEND)
        self._transport = transport
        self._global_functions = list(global_functions or [])
        self._action_manager = ActionManager(worker, self)
        self._state: dict[str, Any] = {}
        self._current_node: str | None = None
        self._pending: _Transition | None = None
        self._initialized = False
        worker.add_event_handler("on_pipeline_finished", self._on_pipeline_finished)

    # ------------------------------------------------------------------ properties

    @property
    def state(self) -> dict[str, Any]:
        """Data kept across nodes for the whole call (handlers read and write it)."""
        return self._state

    @property
    def current_node(self) -> str | None:
        """The name of the node the flow is in (None before the first one)."""
        return self._current_node

    @property
    def transport(self) -> BaseTransport | None:
        return self._transport

    @property
    def worker(self) -> PipelineWorker:
        """The pipeline's worker (handlers may queue frames on it)."""
        return self._worker

    @property
    def task(self) -> PipelineWorker:
        """The older name of :attr:`worker`."""
        return self._worker

    # ------------------------------------------------------------------ public API

    async def initialize(self, initial_node: NodeConfig | None = None) -> None:
        """Start the flow, at ``initial_node`` if given (else at the first
        :meth:`set_node_from_config`). Raises :class:`FlowInitializationError`."""
        if self._initialized:
            logger.warning("FlowManager is already initialized")
            return
        self._initialized = True
        if initial_node is None:
            return
        try:
            await self._set_node(get_or_generate_node_name(initial_node), initial_node)
        except Exception as exc:
            self._initialized = False
            raise FlowInitializationError(f"failed to initialize the flow: {exc}") from exc

    async def set_node_from_config(self, node_config: NodeConfig) -> None:
        """Enter ``node_config`` now (from a handler, an event handler, anywhere)."""
        await self._set_node(get_or_generate_node_name(node_config), node_config)

    def register_action(self, action_type: str, handler: Callable[..., Any]) -> None:
        """Handle actions of ``action_type`` with ``handler(action, flow_manager)`` (or
        ``handler(action)``; sync or async)."""
        self._action_manager.register_action(action_type, handler)

    def get_current_context(self) -> list[Any]:
        """The messages of the LLM context as they are now."""
        return list(self._context_aggregator.user().context.messages)

    # ------------------------------------------------------------------ entering a node

    async def _set_node(self, node_id: str, node_config: NodeConfig) -> None:
        if not self._initialized:
            raise FlowTransitionError("FlowManager must be initialized first")
        self._pending = None
        try:
            self._validate(node_id, node_config)
            node = self._render(node_id, node_config)
            logger.debug("flow: entering node %s", node_id)
            self._action_manager.clear_deferred_post_actions()
            for action in [*node.get("pre_actions", []), *node.get("post_actions", [])]:
                self._register_action_from_config(action)
            if pre_actions := node.get("pre_actions"):
                await self._action_manager.execute_actions(pre_actions)

            schemas: list[FunctionSchema] = []
            for function in [*self._global_functions, *node.get("functions", [])]:
                schemas.append(self._function_schema(node_id, function))
            tools: ToolsSchema | NotGiven = ToolsSchema(schemas) if schemas else NOT_GIVEN

            role_message = node.get("role_message")
            role_messages = None if role_message else node.get("role_messages")
            if role_message and node.get("role_messages"):
                logger.warning(
                    "node %s: both role_message and role_messages; using role_message", node_id
                )
            await self._update_context(
                role_message, role_messages or [], node["task_messages"], tools, node
            )
            self._current_node = node_id

            respond_immediately = node.get("respond_immediately", True)
            if respond_immediately:
                await self._worker.queue_frame(LLMRunFrame())
            if post_actions := node.get("post_actions"):
                if respond_immediately:
                    await self._action_manager.execute_actions(post_actions)
                else:
                    self._action_manager.schedule_deferred_post_actions(post_actions)
        except Exception as exc:
            logger.error("flow: could not enter node %s: %s", node_id, exc)
            raise FlowError(f"failed to set node {node_id}: {exc}") from exc

    def _validate(self, node_id: str, node: NodeConfig) -> None:
        if "task_messages" not in node:
            raise FlowError(f"node {node_id!r} has no 'task_messages'")
        for function in node.get("functions", []):
            if isinstance(function, FlowsFunctionSchema):
                continue
            if not callable(function):
                raise InvalidFunctionError(
                    f"node {node_id!r}: a function must be a FlowsFunctionSchema or an async "
                    "function taking flow_manager first"
                )
            FlowsDirectFunctionWrapper.validate_function(function)

    def _register_action_from_config(self, action: ActionConfig) -> None:
        action_type = action.get("type")
        if not action_type or self._action_manager.has_action(action_type):
            return
        handler = action.get("handler")
        if handler is None or not callable(handler):
            raise ActionError(
                f"action {action_type!r} is not registered; give it a 'handler' or call "
                "register_action()"
            )
        self.register_action(action_type, handler)

    def _render(self, node_id: str, node: NodeConfig) -> NodeConfig:
        """The node with ``{{ key }}`` placeholders filled in from :attr:`state`."""

        def lookup(path: str) -> str:
            value: Any = self._state
            for part in path.split("."):
                if not isinstance(value, Mapping) or part not in value:
                    raise FlowError(f"node {node_id!r} uses {{{{ {path} }}}}, not in state")
                value = value[part]
            return str(value)

        def render(text: str) -> str:
            return _PLACEHOLDER.sub(
                lambda m: m.group(0)[1:] if m.group(1) else lookup(m.group(2)), text
            )

        rendered = dict(node)
        if role_message := node.get("role_message"):
            rendered["role_message"] = render(role_message)
        rendered["task_messages"] = [
            {**message, "content": render(message["content"])}
            if isinstance(message.get("content"), str)
            else message
            for message in node["task_messages"]
        ]
        for key in ("pre_actions", "post_actions"):
            if key in node:
                rendered[key] = [
                    {**action, "text": render(action["text"])}
                    if action.get("type") == "tts_say" and isinstance(action.get("text"), str)
                    else action
                    for action in node[key]
                ]
        return cast(NodeConfig, rendered)

    async def _update_context(
        self,
        role_message: str | None,
        role_messages: list[dict[str, Any]],
        task_messages: list[dict[str, Any]],
        tools: ToolsSchema | NotGiven,
        node: NodeConfig,
    ) -> None:
        frames: list[Frame] = []
        if role_message:
            # The mapping form: every LLM's own Settings class reads it, and a switcher hands
            # it to its inactive LLMs as well, so the role survives a switch.
            frames.append(
                LLMUpdateSettingsFrame(
                    settings={"system_instruction": role_message}, reach_inactive_services=True
                )
            )
        messages: list[dict[str, Any]] = list(role_messages)
        strategy = node.get("context_strategy") or self._context_strategy
        reset = strategy.strategy is not ContextStrategy.APPEND
        if strategy.strategy is ContextStrategy.RESET_WITH_SUMMARY:
            summary = await self._summary(strategy.summary_prompt or "")
            if summary:
                messages.append(
                    {"role": "system", "content": f"Summary of the conversation so far:\n{summary}"}
                )
            else:
                logger.warning("flow: no conversation summary; appending instead of resetting")
                reset = False
        messages.extend(task_messages)
        if reset:
            frames.append(_NodeMessagesUpdateFrame(messages))
        else:
            frames.append(_NodeMessagesAppendFrame(messages))
        frames.append(_NodeToolsFrame(tools))
        await self._worker.queue_frames(frames)

    async def _summary(self, prompt: str) -> str | None:
        """The LLM's summary of the conversation (None if it failed or took too long)."""
        history = json.dumps(list(self.get_current_context()), default=str)
        context = LLMContext([{"role": "user", "content": f"Conversation history: {history}"}])
        try:
            return await asyncio.wait_for(
                self._llm.run_inference(context, system_instruction=prompt),
                _SUMMARY_TIMEOUT_SECS,
            )
        except TimeoutError:
            logger.warning("flow: the conversation summary took too long")
        except Exception:
            logger.exception("flow: the conversation summary failed")
        return None

    # ------------------------------------------------------------------ functions

    def _function_schema(
        self, node_id: str, function: FlowsFunctionSchema | FlowsDirectFunction
    ) -> FunctionSchema:
        """The tool as the LLM sees it, carrying the handler that runs it."""
        if isinstance(function, FlowsFunctionSchema):
            tool: FlowsFunctionSchema | FlowsDirectFunctionWrapper = function
        elif callable(function):
            tool = FlowsDirectFunctionWrapper(function)
        else:
            raise InvalidFunctionError(f"node {node_id!r}: invalid function {function!r}")
        handler = tool_options(
            cancel_on_interruption=tool.cancel_on_interruption, timeout_secs=tool.timeout_secs
        )(self._call_handler_for(tool))
        return FunctionSchema(tool.name, tool.description, tool.properties, tool.required, handler)

    def _call_handler_for(
        self, tool: FlowsFunctionSchema | FlowsDirectFunctionWrapper
    ) -> Callable[[FunctionCallParams], Any]:
        async def run(params: FunctionCallParams) -> None:
            try:
                await self._run_function(tool, params)
            except Exception as exc:
                logger.exception("flow: function %s failed", tool.name)
                await params.result_callback({"status": "error", "error": str(exc)})

        return run

    async def _run_function(
        self, tool: FlowsFunctionSchema | FlowsDirectFunctionWrapper, params: FunctionCallParams
    ) -> None:
        args = dict(params.arguments)
        if isinstance(tool, FlowsDirectFunctionWrapper):
            response = await tool.invoke(args, self)
        else:
            response = await self._call(tool.handler, args)
        if isinstance(response, tuple):
            result, next_node = response
            if result is None:
                result = {"status": "acknowledged"}
        elif isinstance(tool, FlowsDirectFunctionWrapper):
            raise InvalidFunctionError(
                f"direct function {tool.name} must return (result, next_node), "
                f"not {type(response).__name__}"
            )
        else:
            result, next_node = response, None
        if next_node is TRANSITION_IN_YAML:
            raise InvalidFunctionError(
                f"{tool.name} returned TRANSITION_IN_YAML, but its node is not from a flow "
                "config; return a NodeConfig or None"
            )
        if next_node is None or next_node is NO_RESPONSE:
            properties = FunctionCallResultProperties(run_llm=next_node is None)
        else:
            self._pending = _Transition(cast(NodeConfig, next_node), tool.name)
            properties = FunctionCallResultProperties(
                run_llm=False, on_context_updated=self._on_context_updated
            )
        await params.result_callback(result, properties=properties)

    async def _call(self, handler: FunctionHandler, args: dict[str, Any]) -> Any:
        """Call a handler as ``(args, flow_manager)``, ``(args)`` or ``()`` (older styles)."""
        count = len(inspect.signature(handler).parameters)
        if count == 0:
            return await cast(Callable[[], Any], handler)()
        if count == 1:
            return await cast(Callable[[dict[str, Any]], Any], handler)(args)
        return await cast(Callable[[dict[str, Any], FlowManager], Any], handler)(args, self)

    async def _on_context_updated(self) -> None:
        """The LLM service calls this once the response's results are in the context."""
        transition, self._pending = self._pending, None
        if transition is not None:
            self._action_manager.spawn(self._transition(transition), "flow-transition")

    async def _transition(self, transition: _Transition) -> None:
        node = transition.next_node
        name = get_or_generate_node_name(node)
        logger.debug("flow: %s moves to node %s", transition.function_name, name)
        await self._set_node(name, node)

    async def _on_pipeline_finished(self, worker: PipelineWorker, frame: Frame) -> None:
        await self._action_manager.cancel_tasks()
