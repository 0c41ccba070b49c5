"""A :class:`~callpipe.flows.FlowConfig` joined to the bot's code (``pipecat.flows.flow``).

``Flow(config, handlers=module_or_dict)`` turns each node into a ready
:class:`~callpipe.flows.NodeConfig`: tools become the direct functions of the same name,
``transition_only`` tools are made from the config alone, action ``handler`` names become the
callables, and transitions lead to the configured nodes. Every missing or ambiguous name is
collected and raised at once as a :class:`~callpipe.flows.FlowReferenceError`.

A tool of a configured flow returns ``(result, TRANSITION_IN_YAML)`` and the config decides
where to go (or ``(result, NO_RESPONSE)`` to stay quietly); returning a node is refused, since
the config owns the transitions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from callpipe.flows.config import FlowConfig, case_key
from callpipe.flows.exceptions import (
    FlowError,
    FlowProblem,
    FlowReferenceError,
    InvalidFunctionError,
)
from callpipe.flows.types import (
    NO_RESPONSE,
    TRANSITION_IN_YAML,
    ActionConfig,
    ContextStrategyConfig,
    FlowArgs,
    FlowsDirectFunction,
    FlowsDirectFunctionWrapper,
    FlowsFunctionSchema,
    NodeConfig,
)

if TYPE_CHECKING:
    from callpipe.flows.manager import FlowManager

logger = logging.getLogger(__name__)

Handlers = Mapping[str, Callable[..., Any]] | Sequence[Any] | Any
"""A dict of callables by name, an object (a module) with them as attributes, or a list of
those."""


class Flow:
    """A config joined to its handlers; hand its nodes to a :class:`FlowManager`::

    flow = Flow(FlowConfig.from_file("flow.yaml"), handlers=my_tools)
    flow_manager = FlowManager(..., global_functions=flow.global_functions)
    await flow_manager.initialize(flow.initial_node)
    """

    def __init__(self, config: FlowConfig, *, handlers: Handlers) -> None:
        self._config = config
        self._handlers: list[Any] = (
            list(handlers) if isinstance(handlers, list | tuple) else [handlers]
        )
        self._problems: list[FlowProblem] = []
        self._nodes: dict[str, NodeConfig] = {}
        for name, node in config.nodes.items():
            self._nodes[name] = self._node(name, node)
        self._global_functions: list[FlowsFunctionSchema] = []
        for ref in config.global_functions:
            if schema := self._function(ref, "global_functions", None):
                self._global_functions.append(schema)
        if self._problems:
            raise FlowReferenceError(self._problems)

    @property
    def config(self) -> FlowConfig:
        return self._config

    @property
    def initial_node(self) -> NodeConfig:
        return self._nodes[self._config.initial_node]

    @property
    def global_functions(self) -> list[FlowsFunctionSchema | FlowsDirectFunction]:
        """The tools of every node, for ``FlowManager(global_functions=...)`` (a new list)."""
        return list(self._global_functions)

    def node(self, name: str) -> NodeConfig:
        """The node called ``name``; :class:`FlowError` if there is none."""
        if name not in self._nodes:
            raise FlowError(f"the flow has no node {name!r}")
        return self._nodes[name]

    # ------------------------------------------------------------------ building

    def _node(self, name: str, node: FlowConfig.Node) -> NodeConfig:
        where = f"node {name!r}"
        built: NodeConfig = {
            "name": name,
            "task_messages": [{"role": m.role, "content": m.content} for m in node.task_messages],
            "respond_immediately": node.respond_immediately,
        }
        if node.role_message is not None:
            built["role_message"] = node.role_message
        if node.functions:
            built["functions"] = [
                schema for ref in node.functions if (schema := self._function(ref, where, name))
            ]
        if node.pre_actions:
            built["pre_actions"] = [self._action(a, where, name) for a in node.pre_actions]
        if node.post_actions:
            built["post_actions"] = [self._action(a, where, name) for a in node.post_actions]
        if strategy := node.context_strategy_enum():
            built["context_strategy"] = ContextStrategyConfig(strategy)
        return built

    def _function(
        self, ref: FlowConfig.Function, where: str, node: str | None
    ) -> FlowsFunctionSchema | None:
        if ref.transition_only:
            return FlowsFunctionSchema(
                ref.name, ref.description or "", {}, [], self._transition_only(ref)
            )
        function = self._lookup(ref.name, "tool", where, node)
        if function is None:
            return None
        try:
            wrapper = FlowsDirectFunctionWrapper(function)
        except InvalidFunctionError as exc:
            self._problem("invalid_tool", f"{where}: tool {ref.name!r}: {exc}", node, ref.name)
            return None
        # The config's name is what the model sees (one function may serve several names).
        return FlowsFunctionSchema(
            ref.name,
            wrapper.description,
            wrapper.properties,
            wrapper.required,
            self._configured(ref, wrapper, where),
            cancel_on_interruption=wrapper.cancel_on_interruption,
            timeout_secs=wrapper.timeout_secs,
        )

    def _action(self, action: FlowConfig.Action, where: str, node: str) -> ActionConfig:
        built: dict[str, Any] = {"type": action.type, **action.extras()}
        if action.handler is not None:
            handler = self._lookup(action.handler, "action handler", where, node)
            if handler is not None:
                built["handler"] = handler
        return built  # type: ignore[return-value]

    def _lookup(
        self, name: str, kind: str, where: str, node: str | None
    ) -> Callable[..., Any] | None:
        tool = kind == "tool"
        found: dict[int, Any] = {}
        for namespace in self._handlers:
            if isinstance(namespace, Mapping):
                target = namespace.get(name)
            else:
                target = getattr(namespace, name, None)  # a module or object of the bot's
            if target is not None:
                found[id(target)] = target  # one callable reached twice is not ambiguous
        function = name if tool else None
        if len(found) > 1:
            code = "ambiguous_tool" if tool else "ambiguous_handler"
            self._problem(code, f"{where}: {kind} {name!r} is in several handlers", node, function)
            return None
        if not found:
            code = "missing_tool" if tool else "missing_handler"
            self._problem(code, f"{where}: {kind} {name!r} is not in the handlers", node, function)
            return None
        target = next(iter(found.values()))
        if not callable(target):
            code = "invalid_tool" if tool else "missing_handler"
            self._problem(code, f"{where}: {kind} {name!r} is not callable", node, function)
            return None
        return target  # type: ignore[no-any-return]

    def _problem(self, code: str, message: str, node: str | None, function: str | None) -> None:
        self._problems.append(FlowProblem(code, message, node, function))

    # ------------------------------------------------------------------ calling

    def _transition_only(self, ref: FlowConfig.Function) -> Callable[..., Any]:
        async def handler(args: FlowArgs, flow_manager: FlowManager) -> tuple[Any, NodeConfig]:
            return None, self._nodes[str(ref.transition_to)]

        return handler

    def _configured(
        self, ref: FlowConfig.Function, wrapper: FlowsDirectFunctionWrapper, where: str
    ) -> Callable[..., Any]:
        async def handler(args: FlowArgs, flow_manager: FlowManager) -> tuple[Any, Any]:
            response = await wrapper.invoke(args, flow_manager)
            if not isinstance(response, tuple) or len(response) != 2:
                raise FlowError(
                    f"{where}: tool {ref.name!r} must return (result, TRANSITION_IN_YAML), "
                    f"not {type(response).__name__}"
                )
            result, next_node = response
            if next_node is NO_RESPONSE:
                return result, NO_RESPONSE
            if next_node is not TRANSITION_IN_YAML:
                raise FlowError(
                    f"{where}: tool {ref.name!r} returned {next_node!r} as the next node; "
                    "the flow config decides, so return (result, TRANSITION_IN_YAML)"
                )
            return result, self._destination(ref, result, where)

        return handler

    def _destination(self, ref: FlowConfig.Function, result: Any, where: str) -> NodeConfig | None:
        target = ref.transition_to
        if target is None:
            return None
        if isinstance(target, str):
            return self._nodes[target]
        if not isinstance(result, Mapping) or target.field not in result:
            raise FlowError(
                f"{where}: tool {ref.name!r} branches on {target.field!r}, "
                "which its result does not have"
            )
        name = target.cases.get(case_key(result[target.field]), target.default)
        if name is None:
            logger.debug("%s: tool %s matched no case; staying", where, ref.name)
            return None
        return self._nodes[name]
