"""FlowConfig (a flow as YAML/JSON data) and Flow (joined to the bot's functions)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from callpipe.flows import (
    NO_RESPONSE,
    TRANSITION_IN_YAML,
    Flow,
    FlowConfig,
    FlowError,
    FlowManager,
    FlowReferenceError,
)
from callpipe.testing.fakes.openai import FakeOpenAIServer

from .helpers import Bot

YAML = """
initial_node: greet
nodes:
  greet:
    role_message: You take food orders.
    task_messages:
      - role: system
        content: Ask pizza or sushi.
    functions:
      - name: choose_pizza
        transition_only: true
        description: The caller wants pizza.
        transition_to: pizza
  pizza:
    task_messages:
      - role: system
        content: Take the pizza order.
    pre_actions:
      - type: tts_say
        text: Pizza it is.
    functions:
      - name: place_order
        transition_to:
          field: status
          cases: {ok: done, sold_out: pizza}
  done:
    task_messages:
      - role: system
        content: Say goodbye.
    context_strategy: reset
    post_actions:
      - type: log_order
        handler: log_order
        channel: kitchen
global_functions:
  - name: opening_hours
"""


async def place_order(flow_manager: FlowManager, size: str) -> tuple[Any, Any]:
    """Place the order.

    Args:
        size: Small, medium or large.
    """
    flow_manager.state["size"] = size
    return {"status": "ok"}, TRANSITION_IN_YAML


async def opening_hours(flow_manager: FlowManager) -> tuple[Any, Any]:
    """When the shop is open."""
    return {"hours": "9-5"}, NO_RESPONSE


logged: list[dict[str, Any]] = []


async def log_order(action: dict[str, Any], flow_manager: FlowManager) -> None:
    logged.append(action)


HANDLERS = SimpleNamespace(
    place_order=place_order, opening_hours=opening_hours, log_order=log_order
)


def test_yaml_becomes_nodes_with_functions_and_actions(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(YAML)
    flow = Flow(FlowConfig.from_file(path), handlers=HANDLERS)
    greet = flow.initial_node
    assert greet["name"] == "greet" and greet["role_message"] == "You take food orders."
    [choose] = greet["functions"]
    assert choose.name == "choose_pizza" and choose.properties == {}  # type: ignore[union-attr]
    [order] = flow.node("pizza")["functions"]
    assert order.name == "place_order"  # type: ignore[union-attr]
    assert order.required == ["size"]  # type: ignore[union-attr]
    assert flow.node("pizza")["pre_actions"] == [{"type": "tts_say", "text": "Pizza it is."}]
    done = flow.node("done")
    assert done["context_strategy"].strategy.value == "reset"
    assert done["post_actions"] == [
        {"type": "log_order", "handler": log_order, "channel": "kitchen"}
    ]
    assert [f.name for f in flow.global_functions] == ["opening_hours"]  # type: ignore[union-attr]
    with pytest.raises(FlowError):
        flow.node("nowhere")
    # The same flow from JSON, and a handlers dict, give the same nodes.
    data = FlowConfig.from_yaml(YAML).model_dump(exclude_none=True)
    same = Flow(FlowConfig.from_json(json.dumps(data)), handlers=vars(HANDLERS))
    assert same.node("done")["task_messages"] == done["task_messages"]


def test_include_reads_files_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "greeting.yaml").write_text("- role: system\n  content: Hello from a file.\n")
    (tmp_path / "flow.yaml").write_text(
        "initial_node: a\nnodes:\n  a:\n    task_messages: !include greeting.yaml\n"
    )
    config = FlowConfig.from_file(tmp_path / "flow.yaml")
    assert config.nodes["a"].task_messages[0].content == "Hello from a file."
    with pytest.raises(Exception, match="include"):
        FlowConfig.from_yaml((tmp_path / "flow.yaml").read_text())  # no base_dir: refused


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(initial_node="nowhere"), "initial_node"),
        (lambda d: d["nodes"]["greet"]["functions"][0].update(transition_to="x"), "not a node"),
        (lambda d: d["nodes"]["pizza"]["functions"][0].update(description="x"), "description"),
        (lambda d: d["nodes"]["done"]["post_actions"].append({"type": "function"}), "handler"),
        (
            lambda d: d["nodes"]["pizza"]["functions"].append({"name": "place_order"}),
            "twice",
        ),
    ],
)
def test_shape_errors_are_found_on_load(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = FlowConfig.from_yaml(YAML).model_dump(exclude_none=True)
    change(data)
    with pytest.raises(ValidationError, match=message):
        FlowConfig.model_validate(data)


def test_every_missing_reference_is_reported_at_once() -> None:
    async def another_place_order(flow_manager: FlowManager) -> tuple[Any, Any]:
        """Also places orders."""
        return None, TRANSITION_IN_YAML

    handlers = [vars(HANDLERS) | {"log_order": None}, {"place_order": another_place_order}]
    with pytest.raises(FlowReferenceError) as caught:
        Flow(FlowConfig.from_yaml(YAML), handlers=handlers)
    codes = sorted((p.code, p.node) for p in caught.value.problems)
    assert codes == [("ambiguous_tool", "pizza"), ("missing_handler", "done")]
    assert "2 problems" in str(caught.value)


async def test_a_configured_flow_runs_its_transitions(
    server: FakeOpenAIServer, start: Callable[..., Bot]
) -> None:
    logged.clear()
    flow = Flow(FlowConfig.from_yaml(YAML), handlers=HANDLERS)
    server.add_chat_reply(tool_calls=[{"name": "choose_pizza", "arguments": {}}])
    server.add_chat_reply(tool_calls=[{"name": "place_order", "arguments": {"size": "large"}}])
    server.add_chat_reply("Bye!")
    bot = start(global_functions=flow.global_functions)
    await bot.flow.initialize(flow.initial_node)
    await bot.requests(3)
    await bot.until(lambda: bool(logged))
    await bot.end()
    assert bot.tool_names(0) == ["opening_hours", "choose_pizza"]
    assert bot.tool_names(1) == ["opening_hours", "place_order"]
    assert bot.flow.state["size"] == "large"
    assert bot.flow.current_node == "done"  # the result's status picked the case
    assert bot.request(2)["messages"][1:] == [{"role": "system", "content": "Say goodbye."}]
    assert "say:Pizza it is." in bot.log
    assert logged[0]["channel"] == "kitchen"


async def test_a_configured_tool_must_let_the_config_decide(
    server: FakeOpenAIServer, start: Callable[..., Bot]
) -> None:
    async def place_order(flow_manager: FlowManager, size: str) -> tuple[Any, Any]:
        """Place the order."""
        return {"status": "ok"}, None

    others = {"opening_hours": opening_hours, "log_order": log_order}
    flow = Flow(FlowConfig.from_yaml(YAML), handlers=[{"place_order": place_order}, others])
    server.add_chat_reply(tool_calls=[{"name": "place_order", "arguments": {"size": "s"}}])
    server.add_chat_reply("Sorry.")
    bot = start()
    await bot.flow.initialize(flow.node("pizza"))
    await bot.requests(2)
    await bot.end()
    tool = [m for m in bot.request(1)["messages"] if m["role"] == "tool"][0]
    assert "TRANSITION_IN_YAML" in json.loads(tool["content"])["error"]
    assert bot.flow.current_node == "pizza"
