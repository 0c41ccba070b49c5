"""FlowManager on a real pipeline: OpenAI LLM service against the fake server on loopback.

The pipeline is user aggregator → LLM → "TTS" (a recorder) → assistant aggregator; the fake
server's scripted replies play the model, so each test reads what the model was offered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from callpipe.flows import (
    NO_RESPONSE,
    ContextStrategy,
    ContextStrategyConfig,
    FlowArgs,
    FlowError,
    FlowInitializationError,
    FlowManager,
    FlowsFunctionSchema,
    FlowTransitionError,
    NodeConfig,
)
from callpipe.frames.frames import (
    BotStoppedSpeakingFrame,
    LLMMessagesAppendFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineTask
from callpipe.processors.aggregators.async_tool_messages import ASYNC_TOOL_INSTRUCTIONS
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing.fakes.openai import FakeOpenAIServer

from .helpers import WAIT_SECS, Bot

ROLE = "You are a booking assistant.\n\n" + ASYNC_TOOL_INSTRUCTIONS
"""The role as the model gets it: a flow's functions are asynchronous (cancel_on_interruption
defaults to False), so the LLM service adds the async-tool instructions, as in 1.14."""


def task_message(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": text}]


async def confirm(flow_manager: FlowManager, answer: str) -> tuple[Any, NodeConfig | None]:
    """Record whether the caller confirmed.

    Args:
        answer: What the caller said, yes or no.
    """
    flow_manager.state["answer"] = answer
    return {"answer": answer}, None


def confirm_node(**extra: Any) -> NodeConfig:
    node: NodeConfig = {
        "name": "confirm",
        "task_messages": task_message("Ask {{ name }} to confirm."),
        "functions": [confirm],
    }
    node.update(extra)  # type: ignore[typeddict-item]
    return node


def name_node(handler: Callable[..., Any], **extra: Any) -> NodeConfig:
    node: NodeConfig = {
        "name": "ask_name",
        "role_message": "You are a booking assistant.",
        "task_messages": task_message("Ask for the caller's name."),
        "functions": [
            FlowsFunctionSchema(
                name="record_name",
                description="Store the caller's name.",
                properties={"name": {"type": "string"}},
                required=["name"],
                handler=handler,
            )
        ],
    }
    node.update(extra)  # type: ignore[typeddict-item]
    return node


# ---------------------------------------------------------------------------- transitions


async def test_a_tool_call_moves_the_flow_to_the_next_node(
    server: FakeOpenAIServer, start: Callable[..., Bot]
) -> None:
    seen: list[FlowArgs] = []

    async def record_name(args: FlowArgs, flow_manager: FlowManager) -> tuple[Any, NodeConfig]:
        seen.append(args)
        flow_manager.state["name"] = args["name"]
        return {"status": "saved"}, confirm_node()

    server.add_chat_reply(tool_calls=[{"name": "record_name", "arguments": {"name": "Ana"}}])
    server.add_chat_reply("Is that right, Ana?")
    bot = start()
    await bot.flow.initialize(name_node(record_name))
    await bot.requests(2)
    await bot.end()

    # Node 1: its role as the system instruction, its task, only its tool.
    first = bot.request(0)
    assert first["messages"][0] == {"role": "system", "content": ROLE}
    assert "Ask for the caller's name." in bot.contents(0)
    assert bot.tool_names(0) == ["record_name"]
    assert seen == [{"name": "Ana"}]

    # Node 2: its tool (read from the direct function), its task with state filled in,
    # appended after the tool result (APPEND keeps node 1's messages).
    assert bot.tool_names(1) == ["confirm"]
    tool = bot.request(1)["tools"][0]["function"]
    assert tool["description"] == "Record whether the caller confirmed."
    assert tool["parameters"]["required"] == ["answer"]
    assert "What the caller said" in tool["parameters"]["properties"]["answer"]["description"]
    contents = bot.contents(1)
    assert "Ask for the caller's name." in contents
    assert contents[-1] == "Ask Ana to confirm."
    result = [m for m in bot.request(1)["messages"] if m["role"] == "tool"]
    assert json.loads(result[0]["content"]) == {"status": "saved"}
    assert bot.flow.current_node == "confirm"
    assert len(server.chat_requests) == 2  # no answer run on the stale node in between


async def test_direct_function_stays_on_the_node_and_the_model_answers(
    server: FakeOpenAIServer, start: Callable[..., Bot]
) -> None:
    server.add_chat_reply(tool_calls=[{"name": "confirm", "arguments": {"answer": "yes"}}])
    server.add_chat_reply("Great.")
    bot = start()
    bot.flow.state["name"] = "Ana"
    await bot.flow.initialize(confirm_node())
    await bot.requests(2)
    await bot.end()
    assert bot.flow.state["answer"] == "yes"
    assert bot.tool_names(1) == ["confirm"]
    assert bot.flow.current_node == "confirm"


async def test_reset_replaces_the_conversation_with_the_new_node(
    server: FakeOpenAIServer, start: Callable[..., Bot]
) -> None:
    async def record_name(args: FlowArgs, flow_manager: FlowManager) -> tuple[Any, NodeConfig]:
        flow_manager.state["name"] = args["name"]
        reset = ContextStrategyConfig(strategy=ContextStrategy.RESET)
        return None, confirm_node(context_strategy=reset)

    server.add_chat_reply(tool_calls=[{"name": "record_name", "arguments": {"name": "Ana"}}])
    server.add_chat_reply("Is that right?")
    bot = start()
    await bot.flow.initialize(name_node(record_name))
    await bot.requests(2)
    await bot.end()
    # The role stays (it is the LLM's instruction); everything else is the new task.
    assert bot.request(1)["messages"] == [
        {"role": "system", "content": ROLE},
        {"role": "system", "content": "Ask Ana to confirm."},
    ]


async def test_reset_with_summary_starts_from_the_llm_summary(
    server: FakeOpenAIServer, start: Callable[..., Bot]
) -> None:
    async def record_name(args: FlowArgs, flow_manager: FlowManager) -> tuple[Any, NodeConfig]:
        flow_manager.state["name"] = args["name"]
        return None, confirm_node()

    server.add_chat_reply(tool_calls=[{"name": "record_name", "arguments": {"name": "Ana"}}])
    server.add_chat_reply("Ana gave her name.")  # the summary
    server.add_chat_reply("Is that right?")
    strategy = ContextStrategyConfig(
        strategy=ContextStrategy.RESET_WITH_SUMMARY, summary_prompt="Summarize briefly."
    )
    bot = start(context_strategy=strategy)
    await bot.flow.initialize(
        {
            **name_node(record_name),
            "context_strategy": ContextStrategyConfig(strategy=ContextStrategy.APPEND),
        }
    )
    await bot.requests(3)
    await bot.end()
    summary_request = bot.request(1)
    assert summary_request["messages"][0] == {"role": "system", "content": "Summarize briefly."}
    assert "record_name" in summary_request["messages"][1]["content"]
    messages = bot.request(2)["messages"]
    assert [m["content"] for m in messages[1:]] == [
        "Summary of the conversation so far:\nAna gave her name.",
        "Ask Ana to confirm.",
    ]


async def test_no_response_keeps_the_model_quiet(
    server: FakeOpenAIServer, start: Callable[..., Bot]
) -> None:
    async def record_name(args: FlowArgs) -> tuple[Any, Any]:
        return {"status": "saved"}, NO_RESPONSE

    server.add_chat_reply(tool_calls=[{"name": "record_name", "arguments": {"name": "Ana"}}])
    server.add_chat_reply("Yes?")
    bot = start()
    await bot.flow.initialize(name_node(record_name))
    await bot.requests(1)
    await bot.until(lambda: any(m.get("role") == "tool" for m in bot.context.messages))
    await bot.task.queue_frame(
        LLMMessagesAppendFrame([{"role": "user", "content": "Hello?"}], run_llm=True)
    )
    await bot.requests(2)
    await bot.end()
    # Had the function's result made the model run, that request would come before this one.
    assert bot.contents(1)[-1] == "Hello?"
    assert bot.flow.current_node == "ask_name"


async def test_a_failing_handler_is_reported_and_the_call_goes_on(
    server: FakeOpenAIServer, start: Callable[..., Bot]
) -> None:
    async def record_name(args: FlowArgs, flow_manager: FlowManager) -> tuple[Any, NodeConfig]:
        raise RuntimeError("database is down")

    server.add_chat_reply(tool_calls=[{"name": "record_name", "arguments": {"name": "Ana"}}])
    server.add_chat_reply("Sorry, let me try again.")
    bot = start()
    await bot.flow.initialize(name_node(record_name))
    await bot.requests(2)
    assert not bot.running.done()
    await bot.end()
    result = [m for m in bot.request(1)["messages"] if m["role"] == "tool"]
    assert json.loads(result[0]["content"]) == {"status": "error", "error": "database is down"}
    assert bot.flow.current_node == "ask_name"
    assert bot.tool_names(1) == ["record_name"]


# ---------------------------------------------------------------------------- actions


async def test_pre_and_post_actions_speak_and_end_the_call(
    server: FakeOpenAIServer, start: Callable[..., Bot]
) -> None:
    async def record_name(args: FlowArgs, flow_manager: FlowManager) -> tuple[Any, NodeConfig]:
        flow_manager.state["name"] = args["name"]
        return None, confirm_node(
            pre_actions=[{"type": "tts_say", "text": "One moment, {{ name }}."}],
            post_actions=[{"type": "end_conversation", "text": "Goodbye."}],
        )

    server.add_chat_reply(tool_calls=[{"name": "record_name", "arguments": {"name": "Ana"}}])
    server.add_chat_reply("All done.")
    bot = start()
    await bot.flow.initialize(name_node(record_name))
    await asyncio.wait_for(bot.running, WAIT_SECS)  # end_conversation ended the pipeline
    # The pre-action's words go before node 2's answer, the goodbye after it.
    assert bot.log == ["reply", "say:One moment, Ana.", "reply", "say:Goodbye."]
    assert len(server.chat_requests) == 2


async def test_function_action_runs_after_the_words_before_it(
    start: Callable[..., Bot],
) -> None:
    bot = start()

    async def note(action: dict[str, Any], flow_manager: FlowManager) -> None:
        bot.log.append(f"function:{action['tag']}")

    async def custom(action: dict[str, Any], flow_manager: FlowManager) -> None:
        bot.log.append("custom")

    bot.flow.register_action("custom", custom)
    node: NodeConfig = {
        "name": "hold",
        "task_messages": task_message("Wait."),
        "respond_immediately": False,
        "pre_actions": [
            {"type": "tts_say", "text": "Please hold."},
            {"type": "function", "handler": note, "tag": "lookup"},  # type: ignore[typeddict-unknown-key]
            {"type": "custom"},
        ],
    }
    await bot.flow.initialize(node)
    await bot.end()
    assert bot.log == ["say:Please hold.", "function:lookup", "custom"]
    assert bot.flow.current_node == "hold"


async def test_post_actions_wait_for_the_bot_when_it_does_not_answer_at_once(
    start: Callable[..., Bot],
) -> None:
    bot = start()

    async def after(action: dict[str, Any], flow_manager: FlowManager) -> None:
        bot.log.append("post")

    node: NodeConfig = {
        "name": "listen",
        "task_messages": task_message("Listen."),
        "respond_immediately": False,
        "post_actions": [{"type": "after", "handler": after}],
    }
    await bot.flow.initialize(node)
    assert bot.log == []  # not yet: the bot has not spoken in this node
    await bot.task.queue_frame(BotStoppedSpeakingFrame())
    await bot.until(lambda: bot.log == ["post"])
    await bot.end()


# ---------------------------------------------------------------------------- errors


async def test_errors_before_and_at_initialization(start: Callable[..., Bot]) -> None:
    bot = start()
    with pytest.raises(FlowTransitionError):
        await bot.flow.set_node_from_config(confirm_node())

    async def not_a_direct_function(params: Any) -> tuple[Any, None]:
        return None, None

    bad: NodeConfig = {"task_messages": [], "functions": [not_a_direct_function]}
    with pytest.raises(FlowInitializationError):
        await bot.flow.initialize(bad)
    with pytest.raises(FlowError, match="not in state"):
        await bot.flow.initialize(confirm_node())
    bot.flow.state["name"] = "Ana"
    with pytest.raises(FlowError, match="'nope' is not registered"):
        await bot.flow.initialize(confirm_node(name="x", pre_actions=[{"type": "nope"}]))
    await bot.end()


def test_task_is_the_older_name_of_worker() -> None:
    task = PipelineTask(Pipeline([]))
    llm = OpenAILLMService(api_key="test-key", model="fake-model")
    pair = LLMContextAggregatorPair(LLMContext())
    flow = FlowManager(task=task, llm=llm, context_aggregator=pair)
    assert flow.worker is task and flow.task is task
    with pytest.raises(ValueError):
        FlowManager(task=task, worker=task, llm=llm, context_aggregator=pair)
