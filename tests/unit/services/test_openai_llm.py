"""OpenAILLMService against FakeOpenAIServer: streaming, tools, errors, interruption."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.adapters.llm.services.open_ai_adapter import OpenAILLMInvocationParams
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    MetricsFrame,
)
from callpipe.metrics.metrics import LLMUsageMetricsData, TTFATMetricsData, TTFBMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_calls import virtual_time

from .helpers import emitted, interruption_at, run_then, texts
from .helpers import openai_llm as make_llm


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


async def run_interrupted(
    llm: OpenAILLMService, server: FakeOpenAIServer, before: list[Frame], after: list[Frame]
) -> list[Frame]:
    """Send ``before``; once some text of the streamed reply came out, send ``after``."""
    return await run_then(llm, before, after, when=emitted(LLMTextFrame))


async def test_streams_text_between_response_frames(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Hello there, caller.")
    context = OpenAILLMContext([{"role": "system", "content": "Be brief."}])
    context.add_message({"role": "user", "content": "hi", "interrupted": True})
    down, up = await run_test(make_llm(server), [OpenAILLMContextFrame(context=context)])

    kinds = [type(f) for f in down]
    assert kinds[0] is LLMServiceMetadataFrame  # broadcast at start
    assert kinds[1] is LLMFullResponseStartFrame
    assert kinds[-2] is LLMFullResponseEndFrame and kinds[-1] is EndFrame
    assert texts(down) == "Hello there, caller."
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    request = server.chat_requests[0]
    assert request["model"] == "fake-model" and request["stream"] is True
    assert "stream_options" not in request  # usage is only asked for when reported
    # callpipe's private bookkeeping never reaches the provider.
    assert request["messages"][1] == {"role": "user", "content": "hi"}


async def test_llm_messages_frame_and_params(server: FakeOpenAIServer) -> None:
    params = OpenAILLMService.InputParams(temperature=0.2, max_tokens=50, extra={"user": "u1"})
    down, _ = await run_test(
        make_llm(server, params=params), [LLMMessagesFrame([{"role": "user", "content": "ping"}])]
    )
    assert texts(down) == "You said: ping"
    body = server.chat_requests[0]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50 and body["user"] == "u1"
    assert "top_p" not in body


async def test_input_params_top_k_is_accepted_and_not_sent(server: FakeOpenAIServer) -> None:
    from pydantic import ValidationError

    from callpipe.services.groq.llm import GroqLLMService

    params = OpenAILLMService.InputParams(top_k=40, temperature=0.1)
    assert GroqLLMService.InputParams(top_k=5).top_k == 5
    with pytest.raises(ValidationError):
        OpenAILLMService.InputParams(top_k=-1)
    await run_test(
        make_llm(server, params=params), [LLMMessagesFrame([{"role": "user", "content": "ping"}])]
    )
    body = server.chat_requests[0]
    assert "top_k" not in body and body["temperature"] == 0.1


async def test_service_tier_is_sent_with_every_request(server: FakeOpenAIServer) -> None:
    frames = [LLMMessagesFrame([{"role": "user", "content": "ping"}])]
    await run_test(make_llm(server, service_tier="flex"), frames)
    params = OpenAILLMService.InputParams(service_tier="priority")
    await run_test(make_llm(server, params=params), frames)
    await run_test(make_llm(server, params=params, service_tier="auto"), frames)
    await run_test(make_llm(server), frames)
    tiers = [body.get("service_tier") for body in server.chat_requests]
    assert tiers == ["flex", "priority", "auto", None]


class _ReasoningProviderLLM(OpenAILLMService):
    """A custom OpenAI-compatible service as Pipecat 1.14 users write one."""

    def build_chat_completion_params(
        self, params_from_context: OpenAILLMInvocationParams
    ) -> dict[str, Any]:
        params = super().build_chat_completion_params(params_from_context)
        params["extra_body"] = {"reasoning": {"effort": "low"}}
        params["messages"] = [*params_from_context["messages"], {"role": "user", "content": "!"}]
        return params


async def test_build_chat_completion_params_is_the_request_hook(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    llm = _ReasoningProviderLLM(
        api_key="test-key",
        base_url=server.base_url,
        settings=OpenAILLMService.Settings(
            model="fake-model",
            temperature=0.3,
            extra={"extra_body": {"top_k": 7}, "extra_headers": {"X-A": "1"}},
        ),
    )
    tools = ToolsSchema(
        standard_tools=[FunctionSchema(name="f", description="d", properties={}, required=[])]
    )
    context = LLMContext([{"role": "user", "content": "ping"}], tools=tools)
    with caplog.at_level("WARNING"):
        await run_test(llm, [LLMContextFrame(context=context)])
    body = server.chat_requests[0]
    # Settings.extra's extra_body and the override's are merged into the JSON body, as the
    # OpenAI client sends them; the override's replaced the one from extra.
    assert body["reasoning"] == {"effort": "low"} and "top_k" not in body
    assert "extra_body" not in body and "extra_headers" not in body
    assert "extra_headers is accepted" in caplog.text
    assert body["temperature"] == 0.3 and body["model"] == "fake-model"
    assert [m["content"] for m in body["messages"]] == ["ping", "!"]
    assert body["tools"][0]["function"]["name"] == "f"


async def test_extra_body_from_settings_is_merged(server: FakeOpenAIServer) -> None:
    llm = make_llm(server, params=OpenAILLMService.InputParams(extra={"extra_body": {"a": 1}}))
    await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "ping"}])])
    body = server.chat_requests[0]
    assert body["a"] == 1 and "extra_body" not in body


async def test_tool_call_runs_handler_and_feeds_result_back(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    server.add_chat_reply("It is sunny in Paris.")
    calls: list[FunctionCallParams] = []

    async def get_weather(params: FunctionCallParams) -> None:
        calls.append(params)
        await params.result_callback({"forecast": "sunny"})

    llm = make_llm(server)
    llm.register_function("get_weather", get_weather)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    context = OpenAILLMContext([{"role": "user", "content": "weather?"}], tools=tools)
    down, _ = await run_test(llm, [OpenAILLMContextFrame(context=context)])

    assert [c.arguments for c in calls] == [{"city": "Paris"}]
    assert calls[0].function_name == "get_weather" and calls[0].context is context
    assert len(server.chat_requests) == 2
    assert server.chat_requests[0]["tools"] == tools
    second = server.chat_requests[1]["messages"]
    assert second[1]["role"] == "assistant"
    assert second[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": json.dumps({"city": "Paris"}),
    }
    assert second[2] == {
        "role": "tool",
        "tool_call_id": "call_fake_0",
        "content": json.dumps({"forecast": "sunny"}),
    }
    assert texts(down) == "It is sunny in Paris."
    # One start/end pair per completion.
    assert sum(isinstance(f, LLMFullResponseStartFrame) for f in down) == 2
    assert sum(isinstance(f, LLMFullResponseEndFrame) for f in down) == 2


async def test_tool_call_ids_are_unique_across_rounds(server: FakeOpenAIServer) -> None:
    # Two rounds of tools in one turn, as a model checking two cities one after the other.
    for city in ("Paris", "Oslo"):
        server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": city}}])
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {}, "id": "call_mine"}])
    server.add_chat_reply("Sunny, then cold.")

    async def get_weather(params: FunctionCallParams) -> None:
        await params.result_callback(params.arguments.get("city", "?"))

    llm = make_llm(server)
    llm.register_function("get_weather", get_weather)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    context = OpenAILLMContext([{"role": "user", "content": "weather?"}], tools=tools)
    await run_test(llm, [OpenAILLMContextFrame(context=context)])

    last = server.chat_requests[-1]["messages"]
    call_ids = [c["id"] for m in last if m["role"] == "assistant" for c in m["tool_calls"]]
    results = [(m["tool_call_id"], m["content"]) for m in last if m["role"] == "tool"]
    assert len(set(call_ids)) == 3 and call_ids[2] == "call_mine"
    assert results == list(zip(call_ids, ["Paris", "Oslo", "?"], strict=True))


async def test_parallel_tool_calls_returned_values_and_failures(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "add", "arguments": {"a": 1, "b": 2}},
            {"name": "boom", "arguments": {}},
            {"name": "nope", "arguments": {}},
        ]
    )
    server.add_chat_reply("Done.")

    async def add(params: FunctionCallParams) -> int:
        return int(params.arguments["a"]) + int(params.arguments["b"])

    async def boom(params: FunctionCallParams) -> None:
        raise RuntimeError("broken tool")

    llm = make_llm(server)
    llm.register_function("add", add)
    llm.register_function("boom", boom)
    context = OpenAILLMContext([{"role": "user", "content": "go"}])
    await run_test(llm, [OpenAILLMContextFrame(context=context)])

    tool_messages = [m for m in context.messages if m["role"] == "tool"]
    assert tool_messages[0]["content"] == "3"
    assert "broken tool" in tool_messages[1]["content"]
    assert "unknown function" in tool_messages[2]["content"]


async def test_missing_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAILLMService(model="gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert OpenAILLMService()._api_key == "from-env"


async def test_rejected_key_is_a_fatal_error_at_start(server: FakeOpenAIServer) -> None:
    llm = OpenAILLMService(api_key="wrong", base_url=server.base_url)
    _, up = await run_test(llm, [SleepFrame(10)])  # the fatal error ends the run at once
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal
    assert "401" in errors[0].error and "OPENAI_API_KEY" in errors[0].error


async def test_rate_limit_is_retried_once(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(status=429, error_message="slow down", retry_after=0)
    server.add_chat_reply("Second try.")
    down, up = await run_test(
        make_llm(server), [LLMMessagesFrame([{"role": "user", "content": "x"}])]
    )
    assert texts(down) == "Second try."
    assert len(server.chat_requests) == 2
    assert not [f for f in up if isinstance(f, ErrorFrame)]


@pytest.mark.parametrize("status", [500, 429])
async def test_persistent_errors_are_reported_not_fatal(
    server: FakeOpenAIServer, status: int
) -> None:
    server.add_chat_reply(status=status, error_message="server trouble", retry_after=0)
    server.add_chat_reply(status=status, error_message="server trouble", retry_after=0)
    down, up = await run_test(
        make_llm(server), [LLMMessagesFrame([{"role": "user", "content": "x"}])]
    )
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and not errors[0].fatal
    assert str(status) in errors[0].error and "server trouble" in errors[0].error
    # The response is still closed so downstream aggregators are not left hanging.
    assert isinstance(down[-2], LLMFullResponseEndFrame)


async def test_unauthorized_completion_is_fatal(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(status=401, error_message="Incorrect API key provided.")
    _, up = await run_test(
        make_llm(server, warmup=False), [LLMMessagesFrame([{"role": "user", "content": "x"}])]
    )
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal and "Incorrect API key" in errors[0].error


async def test_dropped_stream_is_reported(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("one two three four five six", drop_after_chunks=3)
    down, up = await run_test(
        make_llm(server), [LLMMessagesFrame([{"role": "user", "content": "x"}])]
    )
    assert texts(down) == "one two"
    assert [f for f in up if isinstance(f, ErrorFrame)]
    assert isinstance(down[-2], LLMFullResponseEndFrame)


async def test_interruption_cancels_the_request(server: FakeOpenAIServer) -> None:
    words = " ".join(f"w{i}" for i in range(60))
    server.add_chat_reply(words, chunk_delay=0.02)
    before: list[Frame] = [LLMMessagesFrame([{"role": "user", "content": "talk"}])]
    down = await run_interrupted(
        make_llm(server), server, before, [InterruptionFrame(), SleepFrame(0.3)]
    )
    cut = interruption_at(down)
    spoken = texts(down[:cut])
    assert spoken and spoken != words
    assert not [f for f in down[cut:] if isinstance(f, LLMTextFrame | LLMFullResponseEndFrame)]
    for _ in range(100):
        if server.cancelled_streams:
            break
        await asyncio.sleep(0.02)
    assert server.cancelled_streams == 1 and server.completed_streams == 0


async def test_next_turn_after_interruption_works(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(" ".join(["slow"] * 50), chunk_delay=0.02)
    server.add_chat_reply("Fresh answer.")
    before: list[Frame] = [LLMMessagesFrame([{"role": "user", "content": "a"}])]
    after: list[Frame] = [InterruptionFrame(), LLMMessagesFrame([{"role": "user", "content": "b"}])]
    down = await run_interrupted(make_llm(server), server, before, after)
    cut = interruption_at(down)
    assert texts(down[cut:]) == "Fresh answer."


async def test_metrics_frames_when_enabled(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Measured.")
    down, _ = await run_test(
        make_llm(server),
        [LLMMessagesFrame([{"role": "user", "content": "x"}])],
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
    )
    data = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    ttfb = [d for d in data if isinstance(d, TTFBMetricsData)]
    usage = [d for d in data if isinstance(d, LLMUsageMetricsData)]
    assert len(ttfb) == 1 and ttfb[0].value >= 0 and ttfb[0].model == "fake-model"
    assert usage and usage[0].value is not None and usage[0].value.prompt_tokens == 10
    assert server.chat_requests[0]["stream_options"] == {"include_usage": True}


async def test_time_to_first_answer_token(server: FakeOpenAIServer) -> None:
    """TTFAT: one per inference, past the reasoning streamed first; a tool call is an answer."""
    metrics = PipelineParams(enable_metrics=True)
    server.add_chat_reply("Plain.")
    server.add_chat_reply("Thought through.", reasoning="let me think it over", chunk_delay=0.05)
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    server.add_chat_reply("Cold in Oslo.")
    llm = make_llm(server)

    async def get_weather(params: FunctionCallParams) -> None:
        await params.result_callback({"forecast": "cold"})

    llm.register_function("get_weather", get_weather)
    frames: list[Frame] = [
        LLMMessagesFrame([{"role": "user", "content": "a"}]),
        LLMMessagesFrame([{"role": "user", "content": "b"}]),
        LLMMessagesFrame([{"role": "user", "content": "weather?"}]),
    ]
    down, _ = await run_test(llm, frames, params=metrics)
    data = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    ttfat = [d for d in data if isinstance(d, TTFATMetricsData)]
    ttfb = [d for d in data if isinstance(d, TTFBMetricsData)]
    # Four inferences (the tool call's answer is a second one), four of each.
    assert len(ttfat) == len(ttfb) == 4
    for answer, first in zip(ttfat, ttfb, strict=True):
        assert answer.ttfb == first.value and answer.model == "fake-model"
        assert answer.ttfat == pytest.approx(answer.ttfb + answer.thinking_time)
    plain, reasoned, tool_call, _ = ttfat
    # Four reasoning words at 50 ms each come before the answer's first word.
    assert reasoned.thinking_time >= 0.15 > plain.thinking_time
    assert tool_call.thinking_time < 0.15
    # Without enable_metrics none is pushed.
    server.add_chat_reply("Quiet.")
    down, _ = await run_test(make_llm(server), frames[:1])
    assert not [f for f in down if isinstance(f, MetricsFrame)]


async def test_default_headers_go_with_every_request(server: FakeOpenAIServer) -> None:
    headers = {"X-Team": "voice", "openai-project": "proj-override"}
    llm = make_llm(server, project="proj-1", default_headers=headers)
    await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "x"}])])
    # The warm-up GET /models and the completion; a default header wins over callpipe's own.
    assert len(server.request_headers) == 2
    for sent in server.request_headers:
        assert sent["x-team"] == "voice"
        assert sent["openai-project"] == "proj-override"
        assert sent["authorization"] == "Bearer test-key"


@virtual_time
async def test_retry_on_timeout_sends_a_silent_request_again_once() -> None:
    user = [LLMMessagesFrame([{"role": "user", "content": "x"}])]
    async with FakeOpenAIServer() as server:
        # An answer that has begun (at 1.5 s) is never cut, however slowly it goes on.
        server.add_chat_reply("slow but started", chunk_delay=1.5)
        # One that says nothing for 20 s is abandoned after 2 s and asked for again, even
        # with max_retries=0 (that counts failures, not silences).
        server.add_chat_reply("Too late.", first_chunk_delay=20.0)
        server.add_chat_reply("On time.")
        for expected in ("slow but started", "On time."):
            llm = make_llm(server, retry_on_timeout=True, retry_timeout_secs=2.0, max_retries=0)
            down, up = await run_test(llm, user)
            assert texts(down) == expected
            assert not [f for f in up if isinstance(f, ErrorFrame)]
        assert len(server.chat_requests) == 3


def test_retry_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="retry_timeout_secs"):
        OpenAILLMService(api_key="k", retry_on_timeout=True, retry_timeout_secs=0)
