"""AnthropicLLMService against FakeAnthropicServer: text, tools, thinking, usage, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.adapters.llm.services.anthropic_adapter import convert_messages
from callpipe.frames.frames import (
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesFrame,
    LLMTextFrame,
    LLMThoughtEndFrame,
    LLMThoughtStartFrame,
    LLMThoughtTextFrame,
    LLMUpdateSettingsFrame,
    MetricsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import LLMUsageMetricsData, TTFBMetricsData
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext, LLMSpecificMessage
from callpipe.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from callpipe.services.anthropic.llm import AnthropicLLMService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.settings import LLMSettings
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeAnthropicServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import errors, texts

WEATHER = FunctionSchema(
    name="get_weather",
    description="Weather in a city",
    properties={"city": {"type": "string"}},
    required=["city"],
)
METRICS = PipelineParams(enable_metrics=True, enable_usage_metrics=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropicServer]:
    async with FakeAnthropicServer() as server:
        yield server


def make_llm(fake: FakeAnthropicServer, **kwargs: Any) -> AnthropicLLMService:
    return AnthropicLLMService(api_key="test-key", base_url=fake.base_url, **kwargs)


def usage(frames: list[Any]) -> list[LLMUsageMetricsData]:
    return [
        d
        for f in frames
        if isinstance(f, MetricsFrame)
        for d in f.data
        if isinstance(d, LLMUsageMetricsData)
    ]


def said(words: str) -> list[Any]:
    transcript = TranscriptionFrame(words, user_id="caller", timestamp="")
    return [UserStartedSpeakingFrame(), transcript, UserStoppedSpeakingFrame(), SleepFrame(0.3)]


async def test_spoken_reply_streams_with_system_prompt_and_headers(
    fake: FakeAnthropicServer,
) -> None:
    fake.add_reply("Hello there, how can I help?")
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    down, up = await run_test(make_llm(fake), [LLMMessagesFrame(messages)], params=METRICS)
    assert not errors(up)
    assert texts(down) == "Hello there, how can I help?"
    assert len([f for f in down if isinstance(f, LLMTextFrame)]) == 6  # streamed, not batched
    kinds = [type(f) for f in down]
    assert kinds.index(LLMFullResponseStartFrame) < kinds.index(LLMTextFrame)
    assert kinds.index(LLMFullResponseEndFrame) > kinds.index(LLMTextFrame)
    body, headers = fake.requests[-1], fake.headers[-1]
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert body["stream"] is True and body["max_tokens"] == 4096
    assert body["model"] == "claude-sonnet-4-6"
    assert body["thinking"] == {"type": "disabled"}  # the low-latency default for this model
    assert headers["anthropic-version"] == "2023-06-01" and headers["x-api-key"] == "test-key"
    assert "anthropic-beta" not in headers
    ttfb = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    assert any(isinstance(d, TTFBMetricsData) and d.value > 0 for d in ttfb)


async def test_usage_metrics_count_the_cache(fake: FakeAnthropicServer) -> None:
    fake.add_reply(
        "One two three.", input_tokens=20, cache_read_tokens=100, cache_creation_tokens=7
    )
    down, _ = await run_test(
        make_llm(fake), [LLMMessagesFrame([{"role": "user", "content": "x"}])], params=METRICS
    )
    [data] = usage(down)
    assert data.value.prompt_tokens == 20
    assert data.value.completion_tokens == 4  # message_start's 1, then one per delta
    assert data.value.cache_read_input_tokens == 100
    assert data.value.cache_creation_input_tokens == 7
    assert data.value.total_tokens == 20 + 4 + 100 + 7


async def test_tool_call_round_trip_through_the_aggregator_pair(
    fake: FakeAnthropicServer,
) -> None:
    fake.add_reply(tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}])
    fake.add_reply("It is sunny in Paris.")
    llm = make_llm(fake)
    seen: list[dict[str, Any]] = []

    async def get_weather(params: FunctionCallParams) -> None:
        seen.append(params.arguments)
        await params.result_callback({"forecast": "sunny"})

    llm.register_function("get_weather", get_weather)
    context = LLMContext(
        [{"role": "system", "content": "You tell the weather."}],
        tools=ToolsSchema(standard_tools=[WEATHER]),
        tool_choice="auto",
    )
    user, assistant = LLMContextAggregatorPair(context)
    down, up = await run_test(Pipeline([user, llm, assistant]), said("Weather in Paris?"))
    assert not errors(up)
    assert seen == [{"city": "Paris"}]
    first, second = fake.requests
    assert first["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    assert first["tool_choice"] == {"type": "auto"}
    call_turn, result_turn = second["messages"][1], second["messages"][2]
    [tool_use] = call_turn["content"]
    assert call_turn["role"] == "assistant" and tool_use["type"] == "tool_use"
    assert tool_use["name"] == "get_weather" and tool_use["input"] == {"city": "Paris"}
    assert tool_use["id"].startswith("toolu_")
    assert result_turn == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": tool_use["id"],
                "content": '{"forecast": "sunny"}',
            }
        ],
    }
    assert context.messages[-1] == {"role": "assistant", "content": "It is sunny in Paris."}


THINKING = AnthropicLLMService.Settings(
    thinking=AnthropicLLMService.ThinkingConfig(type="enabled", budget_tokens=1024)
)


async def test_thinking_streams_as_thought_frames_with_the_signature(
    fake: FakeAnthropicServer,
) -> None:
    fake.add_reply("Hi.", thinking="The caller greets me.")
    llm = make_llm(fake, settings=THINKING)
    down, up = await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "Hello"}])])
    assert not errors(up)
    kinds = [type(f) for f in down]
    start, end = kinds.index(LLMThoughtStartFrame), kinds.index(LLMThoughtEndFrame)
    assert start < kinds.index(LLMThoughtTextFrame) < end < kinds.index(LLMTextFrame)
    [opened] = [f for f in down if isinstance(f, LLMThoughtStartFrame)]
    [closed] = [f for f in down if isinstance(f, LLMThoughtEndFrame)]
    assert opened.append_to_context and opened.llm == "anthropic"
    assert closed.signature in fake.signatures
    thought = "".join(f.text for f in down if isinstance(f, LLMThoughtTextFrame))
    assert thought == "The caller greets me." and texts(down) == "Hi."
    assert fake.requests[0]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert fake.headers[0]["anthropic-beta"] == "interleaved-thinking-2025-05-14"


async def test_thinking_goes_back_signed_before_the_tool_use(fake: FakeAnthropicServer) -> None:
    fake.add_reply(
        thinking="The user wants weather. I should call the tool.",
        tool_calls=[{"name": "get_weather", "input": {"city": "Oslo"}}],
    )
    fake.add_reply("Cold in Oslo.", thinking="Now answer.")
    llm = make_llm(fake, settings=THINKING)

    async def get_weather(params: FunctionCallParams) -> None:
        await params.result_callback("cold")

    llm.register_function("get_weather", get_weather)
    context = LLMContext(tools=ToolsSchema(standard_tools=[WEATHER]))
    user, assistant = LLMContextAggregatorPair(context)
    _, up = await run_test(Pipeline([user, llm, assistant]), said("Weather in Oslo?"))
    assert not errors(up)  # the fake refuses a tool_use turn without its thinking block
    assert len(fake.requests) == 2
    call_turn = fake.requests[1]["messages"][-2]
    assert [b["type"] for b in call_turn["content"]] == ["thinking", "tool_use"]
    assert call_turn["content"][0]["signature"] in fake.signatures
    assert call_turn["content"][0]["thinking"] == "The user wants weather. I should call the tool."
    kept = [m for m in context.messages if isinstance(m, LLMSpecificMessage)]
    assert [m.llm for m in kept] == ["anthropic", "anthropic"]


async def test_kept_thought_is_sent_before_the_tool_use() -> None:
    context = LLMContext([{"role": "user", "content": "Weather?"}])
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    context.add_message({"role": "assistant", "content": None, "tool_calls": [call]})
    thought = {"type": "thought", "text": "hmm", "signature": "sig"}
    context.add_message(LLMSpecificMessage(llm="anthropic", message=thought))
    context.add_message({"role": "tool", "tool_call_id": "toolu_1", "content": "ok"})
    context.add_message(LLMSpecificMessage(llm="openai", message={"role": "user", "content": "x"}))
    _, messages = convert_messages(context.messages_for_api("anthropic"))
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[1]["content"]] == ["thinking", "tool_use"]
    assert messages[1]["content"][0] == {"type": "thinking", "thinking": "hmm", "signature": "sig"}


async def test_rejected_key_is_fatal_at_start(fake: FakeAnthropicServer) -> None:
    llm = AnthropicLLMService(api_key="wrong", base_url=fake.base_url)
    _, up = await run_test(llm, [SleepFrame(10)])  # the fatal error ends the run at once
    [error] = errors(up)
    assert error.fatal and "ANTHROPIC_API_KEY" in error.error and "invalid x-api-key" in error.error


async def test_rejected_key_during_a_turn_is_fatal(fake: FakeAnthropicServer) -> None:
    llm = AnthropicLLMService(api_key="wrong", base_url=fake.base_url, warmup=False)
    down, up = await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "x"}])])
    [error] = errors(up)
    assert error.fatal and "HTTP 401" in error.error
    assert any(isinstance(f, LLMFullResponseEndFrame) for f in down)


async def test_overloaded_is_retried_then_reported_not_fatal(fake: FakeAnthropicServer) -> None:
    fake.add_reply(status=529, error_message="Overloaded")
    fake.add_reply(status=529, error_message="Overloaded")
    _, up = await run_test(make_llm(fake), [LLMMessagesFrame([{"role": "user", "content": "x"}])])
    [error] = errors(up)
    assert len(fake.requests) == 2
    assert not error.fatal and "HTTP 529" in error.error and "Overloaded" in error.error


async def test_rate_limit_once_is_retried_and_answered(fake: FakeAnthropicServer) -> None:
    fake.add_reply(status=429, error_message="slow down")
    fake.add_reply("Fine.")
    down, up = await run_test(
        make_llm(fake), [LLMMessagesFrame([{"role": "user", "content": "x"}])]
    )
    assert not errors(up) and texts(down) == "Fine." and len(fake.requests) == 2


async def test_error_event_mid_stream_is_reported_not_fatal(fake: FakeAnthropicServer) -> None:
    fake.add_reply("Part of it", stream_error="overloaded_error", error_message="Overloaded")
    down, up = await run_test(
        make_llm(fake), [LLMMessagesFrame([{"role": "user", "content": "x"}])]
    )
    [error] = errors(up)
    assert not error.fatal and "overloaded_error" in error.error
    assert texts(down) == "Part of it" and len(fake.requests) == 1  # said something: no retry


async def test_prompt_caching_and_sampling_settings_reach_the_request(
    fake: FakeAnthropicServer,
) -> None:
    llm = make_llm(
        fake,
        model="claude-3-5-haiku-latest",
        params=AnthropicLLMService.InputParams(temperature=0.2, top_k=5),
        settings=AnthropicLLMService.Settings(
            enable_prompt_caching=True, system_prompt_cache_ttl="1h", system_instruction="Sys."
        ),
    )
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    update = LLMUpdateSettingsFrame(delta=AnthropicLLMService.Settings(max_tokens=300))
    await run_test(llm, [update, LLMMessagesFrame(messages)])
    body = fake.requests[-1]
    assert body["system"] == [
        {"type": "text", "text": "Sys.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    marked = [m["content"][-1].get("cache_control") for m in body["messages"]]
    assert marked == [{"type": "ephemeral"}, None, {"type": "ephemeral"}]
    assert body["temperature"] == 0.2 and body["top_k"] == 5 and "top_p" not in body
    assert body["max_tokens"] == 300
    assert "thinking" not in body  # no low-latency default known for this model


async def test_run_inference_is_unstreamed_and_pushes_nothing(fake: FakeAnthropicServer) -> None:
    fake.add_reply("A short summary.")
    llm = make_llm(fake)
    context = LLMContext([{"role": "user", "content": "Summarise."}])
    result = await llm.run_inference(context, max_tokens=50, system_instruction="Summarise.")
    assert result == "A short summary."
    body = fake.requests[-1]
    assert body["stream"] is False and body["max_tokens"] == 50 and body["system"] == "Summarise."


HI = LLMMessagesFrame([{"role": "user", "content": "Hi"}])


@pytest.mark.parametrize(
    ("model", "lowest"),
    [
        ("claude-sonnet-4-6", {"thinking": {"type": "disabled"}}),
        ("claude-sonnet-5-5", {"thinking": {"type": "between_tools"}}),
        ("claude-fable-5-1-20260101", {"output_config": {"effort": "low"}}),
    ],
)
async def test_use_provider_thinking_default_sends_no_lowest_thinking(
    fake: FakeAnthropicServer, model: str, lowest: dict[str, Any]
) -> None:
    unset = make_llm(fake, settings=AnthropicLLMService.Settings(model=model))
    assert unset.settings.use_provider_thinking_default is False  # unset counts as False
    await run_test(unset, [HI])
    for flag in (False, True):
        settings = AnthropicLLMService.Settings(model=model, use_provider_thinking_default=flag)
        await run_test(make_llm(fake, settings=settings), [HI])
    for body in fake.requests[:2]:
        assert {key: body[key] for key in lowest} == lowest
    provider = fake.requests[2]
    assert "thinking" not in provider and "output_config" not in provider
    assert "anthropic-beta" not in fake.headers[2]


async def test_use_provider_thinking_default_changes_mid_call(fake: FakeAnthropicServer) -> None:
    on = LLMUpdateSettingsFrame(delta=LLMSettings(use_provider_thinking_default=True))
    off = LLMUpdateSettingsFrame(settings={"use_provider_thinking_default": False})
    down, up = await run_test(make_llm(fake), [HI, on, HI, off, HI])
    assert not errors(up)
    assert [body.get("thinking") for body in fake.requests] == [
        {"type": "disabled"},
        None,
        {"type": "disabled"},
    ]


async def test_configured_thinking_wins_over_the_flag_and_the_default(
    fake: FakeAnthropicServer,
) -> None:
    for flag in (False, True):
        settings = AnthropicLLMService.Settings(effort="medium", use_provider_thinking_default=flag)
        await run_test(make_llm(fake, settings=settings), [HI])
    for body in fake.requests:
        assert body["output_config"] == {"effort": "medium"} and "thinking" not in body


async def test_thinking_default_is_logged_once_per_model_and_setting(
    fake: FakeAnthropicServer, caplog: pytest.LogCaptureFixture
) -> None:
    on = LLMUpdateSettingsFrame(delta=LLMSettings(use_provider_thinking_default=True))
    with caplog.at_level(logging.DEBUG, logger="callpipe.services.llm_service"):
        await run_test(make_llm(fake), [HI, HI, on, HI, HI])
    sent = [r for r in caplog.records if "lowest thinking setting" in r.getMessage()]
    left = [r for r in caplog.records if "use_provider_thinking_default is on" in r.getMessage()]
    assert [r.levelno for r in sent] == [logging.INFO]
    assert "claude-sonnet-4-6" in sent[0].getMessage()
    assert '"disabled"' in sent[0].getMessage()
    assert [r.levelno for r in left] == [logging.DEBUG]
