"""A Pipecat Flows bot's imports work on callpipe, under either package name."""

from __future__ import annotations

import warnings
from typing import Any

import callpipe.flows
from callpipe.utils.pipecat_alias import install_pipecat_alias, uninstall_pipecat_alias


def test_a_flows_bot_imports_its_names() -> None:
    from callpipe.flows import FlowArgs, FlowManager, FlowsFunctionSchema, NodeConfig

    assert FlowManager.__module__ == "callpipe.flows.manager"
    assert FlowArgs == dict[str, Any]
    assert {"task_messages", "functions", "pre_actions"} <= set(NodeConfig.__annotations__)

    async def handler(args: FlowArgs, flow_manager: FlowManager) -> None:
        return None

    schema = FlowsFunctionSchema("f", "does f", {}, [], handler=handler)
    assert schema.to_function_schema().to_default_dict()["name"] == "f"


def test_pipecat_flows_names_resolve_to_callpipe() -> None:
    install_pipecat_alias()
    try:
        from pipecat.flows import (  # type: ignore[import-not-found]
            ContextStrategy,
            FlowManager,
            FlowResult,
            NodeConfig,
            flows_tool_options,
        )
        from pipecat.flows.types import FlowsFunctionSchema  # type: ignore[import-not-found]
    finally:
        uninstall_pipecat_alias()
    assert FlowManager is callpipe.flows.FlowManager
    assert FlowsFunctionSchema is callpipe.flows.FlowsFunctionSchema
    assert ContextStrategy.RESET.value == "reset"
    assert NodeConfig is callpipe.flows.NodeConfig and FlowResult is callpipe.flows.FlowResult
    assert callable(flows_tool_options)


def test_flows_direct_function_is_the_deprecated_name() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decorate = callpipe.flows.flows_direct_function(timeout_secs=3)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)

    @decorate
    async def slow(flow_manager: callpipe.flows.FlowManager) -> tuple[None, None]:
        """Takes a while."""
        return None, None

    from callpipe.flows.types import FlowsDirectFunctionWrapper

    wrapper = FlowsDirectFunctionWrapper(slow)
    assert (wrapper.timeout_secs, wrapper.cancel_on_interruption) == (3, False)
    assert wrapper.description == "Takes a while."
