"""Pipecat Flows on callpipe: structured conversations as nodes and transitions.

``from callpipe.flows import FlowManager, FlowArgs, NodeConfig, FlowsFunctionSchema`` (Pipecat
1.14's ``pipecat.flows``). See ``docs/flows.md``.
"""

from callpipe.flows.config import FlowConfig
from callpipe.flows.exceptions import (
    ActionError,
    FlowError,
    FlowInitializationError,
    FlowProblem,
    FlowReferenceError,
    FlowTransitionError,
    InvalidFunctionError,
)
from callpipe.flows.flow import Flow
from callpipe.flows.manager import FlowManager
from callpipe.flows.types import (
    NO_RESPONSE,
    TRANSITION_IN_YAML,
    ActionConfig,
    ConsolidatedFunctionResult,
    ContextStrategy,
    ContextStrategyConfig,
    FlowArgs,
    FlowFunctionHandler,
    FlowResult,
    FlowsDirectFunction,
    FlowsFunctionSchema,
    LegacyFunctionHandler,
    NodeConfig,
    ZeroArgFunctionHandler,
    flows_direct_function,
    flows_tool_options,
)

__all__ = [
    "NO_RESPONSE",
    "TRANSITION_IN_YAML",
    "ActionConfig",
    "ActionError",
    "ConsolidatedFunctionResult",
    "ContextStrategy",
    "ContextStrategyConfig",
    "Flow",
    "FlowArgs",
    "FlowConfig",
    "FlowError",
    "FlowFunctionHandler",
    "FlowInitializationError",
    "FlowManager",
    "FlowProblem",
    "FlowReferenceError",
    "FlowResult",
    "FlowTransitionError",
    "FlowsDirectFunction",
    "FlowsFunctionSchema",
    "InvalidFunctionError",
    "LegacyFunctionHandler",
    "NodeConfig",
    "ZeroArgFunctionHandler",
    "flows_direct_function",
    "flows_tool_options",
]
