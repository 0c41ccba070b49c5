"""OpenAIResponsesLLMService against FakeOpenAIServer's /v1/responses: streaming, tools,
reasoning, usage, errors, interruption."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.frames.frames import (
    EndFrame,
    ErrorFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    LLMThoughtEndFrame,
    LLMThoughtStartFrame,
    LLMThoughtTextFrame,
    LLMUpdateSettingsFrame,
    MetricsFrame,
)
from callpipe.metrics.metrics import LLMUsageMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.responses.llm import (
    OpenAIResponsesHttpLLMService,
    OpenAIResponsesLLMService,
)
from callpipe.services.settings import LLMSettings
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import emitted, interruption_at, run_then, texts


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


def make_llm(server: FakeOpenAIServer, **settings: Any) -> OpenAIResponsesLLMService:
    return OpenAIResponsesLLMService(
        api_key="test-key",
        base_url=server.base_url,
        settings=OpenAIResponsesLLMService.Settings(**settings),
    )


def turn(*messages: dict[str, Any], tools: list[FunctionSchema] | None = None) -> LLMContextFrame:
    return LLMContextFrame(context=LLMContext(list(messages), tools=tools or []))


USER = {"role": "user", "content": "hi"}


async def test_streams_text_between_response_frames(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Hello there, caller.")
    frame = turn({"role": "system", "content": "Be kind."}, USER)
    llm = make_llm(server, system_instruction="Be brief.", temperature=0.2)
    down, up = await run_test(llm, [frame])

    kinds = [type(f) for f in down]
    start = kinds.index(LLMFullResponseStartFrame)
    assert kinds[start + 1 : -2] == [LLMTextFrame] * 3
    assert kinds[-2:] == [LLMFullResponseEndFrame, EndFrame]
    assert texts(down) == "Hello there, caller."
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    (body,) = server.responses_requests
    assert body["model"] == "gpt-4.1" and body["stream"] is True and body["store"] is False
    assert body["instructions"] == "Be brief." and body["temperature"] == 0.2
    assert body["input"] == [
        {"role": "developer", "content": "Be kind."},
        {"role": "user", "content": "hi"},
    ]
    assert "reasoning" not in body and "tools" not in body  # gpt-4.1 does not reason


async def test_bot_speaks_first_with_instructions_as_input(server: FakeOpenAIServer) -> None:
    await run_test(make_llm(server, system_instruction="Greet the caller."), [turn()])
    (body,) = server.responses_requests
    assert body["input"] == [{"role": "developer", "content": "Greet the caller."}]
    assert "instructions" not in body


async def test_settings_reach_the_request(server: FakeOpenAIServer) -> None:
    reasoning = OpenAIResponsesLLMService.ReasoningConfig(effort="high", summary="auto")
    await run_test(
        make_llm(server, model="gpt-5.2", max_completion_tokens=99, reasoning=reasoning),
        [turn(USER)],
    )
    await run_test(make_llm(server, model="gpt-5-2025-08-07", max_tokens=20), [turn(USER)])
    llm = make_llm(server, model="gpt-5", extra={"reasoning": {"effort": "medium"}})
    await run_test(llm, [turn(USER)])
    first, dated, extra = server.responses_requests
    assert first["reasoning"] == {"effort": "high", "summary": "auto"}
    assert first["max_output_tokens"] == 99
    # Unconfigured: the model's lowest effort (a dated snapshot counts as its model).
    assert dated["reasoning"] == {"effort": "minimal"} and dated["max_output_tokens"] == 20
    assert extra["reasoning"] == {"effort": "medium"}


async def test_settings_update_changes_the_next_request(server: FakeOpenAIServer) -> None:
    llm = make_llm(server, model="gpt-5")
    update = LLMUpdateSettingsFrame(
        delta=OpenAIResponsesLLMService.Settings(
            model="o3",
            reasoning=OpenAIResponsesLLMService.ReasoningConfig(effort="medium"),
        )
    )
    raw = LLMUpdateSettingsFrame(settings={"reasoning": {"summary": "concise"}, "top_p": 0.5})
    await run_test(llm, [turn(USER), update, turn(USER), raw, turn(USER)])
    before, after, last = server.responses_requests
    assert before["model"] == "gpt-5" and before["reasoning"] == {"effort": "minimal"}
    assert after["model"] == "o3" and after["reasoning"] == {"effort": "medium"}
    assert last["reasoning"] == {"summary": "concise"} and last["top_p"] == 0.5


async def test_tool_call_round_trip(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    server.add_chat_reply("It is sunny in Paris.")
    calls: list[FunctionCallParams] = []

    async def get_weather(params: FunctionCallParams) -> None:
        calls.append(params)
        await params.result_callback({"forecast": "sunny"})

    llm = make_llm(server)
    llm.register_function("get_weather", get_weather)
    weather = FunctionSchema(
        name="get_weather",
        description="Forecast for a city.",
        properties={"city": {"type": "string"}},
        required=["city"],
    )
    frame = turn({"role": "user", "content": "weather?"}, tools=[weather])
    frame.context.set_tool_choice({"type": "function", "function": {"name": "get_weather"}})
    down, _ = await run_test(llm, [frame])

    assert [(c.function_name, c.arguments, c.tool_call_id) for c in calls] == [
        ("get_weather", {"city": "Paris"}, "call_fake_0")
    ]
    assert texts(down) == "It is sunny in Paris."
    first, second = server.responses_requests
    assert first["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "strict": None,
            "description": "Forecast for a city.",
        }
    ]
    assert first["tool_choice"] == {"type": "function", "name": "get_weather"}
    call_item, output_item = second["input"][1:]
    assert call_item == {
        "type": "function_call",
        "call_id": "call_fake_0",
        "name": "get_weather",
        "arguments": json.dumps({"city": "Paris"}),
    }
    assert output_item["type"] == "function_call_output"
    assert output_item["call_id"] == "call_fake_0"
    assert json.loads(output_item["output"]) == {"forecast": "sunny"}


async def test_reasoning_summary_becomes_thought_frames(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Answer.", reasoning="Weigh the options")
    down, _ = await run_test(make_llm(server, model="gpt-5"), [turn(USER)])
    kinds = [type(f) for f in down if not isinstance(f, MetricsFrame)]
    start = kinds.index(LLMThoughtStartFrame)
    assert kinds[start : start + 5] == [
        LLMThoughtStartFrame,
        LLMThoughtTextFrame,
        LLMThoughtTextFrame,
        LLMThoughtTextFrame,
        LLMThoughtEndFrame,
    ]
    assert kinds.index(LLMTextFrame) > start + 4
    thought = "".join(f.text for f in down if isinstance(f, LLMThoughtTextFrame))
    assert thought == "Weigh the options" and texts(down) == "Answer."


async def test_configured_reasoning_goes_back_with_the_next_request(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(reasoning="Need the forecast", tool_calls=[{"name": "get_weather"}])
    server.add_chat_reply("Sunny.")

    async def get_weather(params: FunctionCallParams) -> None:
        await params.result_callback("sunny")

    reasoning = OpenAIResponsesLLMService.ReasoningConfig(effort="low")
    llm = make_llm(server, model="gpt-5", reasoning=reasoning)
    llm.register_function("get_weather", get_weather)
    weather = FunctionSchema(name="get_weather", description="", properties={}, required=[])
    frame = turn(USER, tools=[weather])
    await run_test(llm, [frame])

    first, second = server.responses_requests
    assert first["include"] == ["reasoning.encrypted_content"]
    reasoning_item = {
        "type": "reasoning",
        "id": second["input"][1].get("id"),
        "summary": [{"type": "summary_text", "text": "Need the forecast"}],
        "encrypted_content": "encrypted:Need the forecast",
    }
    kinds = [item.get("type", "message") for item in second["input"]]
    assert kinds == ["message", "reasoning", "function_call", "function_call_output"]
    assert second["input"][1] == reasoning_item and reasoning_item["id"]
    assert second["input"][3]["output"] == "sunny"


async def test_usage_metrics(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Counted words.", cached_tokens=4, reasoning_tokens=6)
    down, _ = await run_test(
        make_llm(server),
        [turn(USER)],
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
    )
    data = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    (usage,) = [d.value for d in data if isinstance(d, LLMUsageMetricsData)]
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (14, 8, 22)
    assert usage.cache_read_input_tokens == 4 and usage.reasoning_tokens == 6


async def test_interruption_cancels_the_stream(server: FakeOpenAIServer) -> None:
    words = " ".join(f"w{i}" for i in range(60))
    server.add_chat_reply(words, chunk_delay=0.02)
    down = await run_then(
        make_llm(server),
        [turn(USER)],
        [InterruptionFrame(), SleepFrame(0.3)],
        when=emitted(LLMTextFrame),
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


async def test_rejected_key_is_fatal(server: FakeOpenAIServer) -> None:
    llm = OpenAIResponsesLLMService(api_key="wrong", base_url=server.base_url)
    _, up = await run_test(llm, [SleepFrame(10)])  # the fatal error ends the run at once
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal and "401" in errors[0].error


async def test_unauthorized_response_is_fatal(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(status=401, error_message="Incorrect API key provided.")
    llm = OpenAIResponsesHttpLLMService(api_key="test-key", base_url=server.base_url, warmup=False)
    _, up = await run_test(llm, [turn(USER)])
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal and "Incorrect API key" in errors[0].error


async def test_failed_response_is_retried_when_the_server_was_at_fault(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(failed_code="server_error", error_message="try later")
    server.add_chat_reply("Second try.")
    down, up = await run_test(make_llm(server), [turn(USER)])
    assert texts(down) == "Second try." and len(server.responses_requests) == 2
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_failed_response_after_text_is_reported_not_fatal(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply("Half said", failed_code="invalid_prompt", error_message="bad input")
    down, up = await run_test(make_llm(server), [turn(USER)])
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and not errors[0].fatal and "bad input" in errors[0].error
    assert texts(down) == "Half said" and len(server.responses_requests) == 1
    assert isinstance(down[-2], LLMFullResponseEndFrame)


async def test_incomplete_response_is_reported_not_fatal(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Cut short", incomplete_reason="max_output_tokens")
    down, up = await run_test(make_llm(server), [turn(USER)])
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and not errors[0].fatal
    assert "max_output_tokens" in errors[0].error
    assert texts(down) == "Cut short" and len(server.responses_requests) == 1


async def test_run_inference_joins_the_text(server: FakeOpenAIServer) -> None:
    server.add_chat_reply('{"summary": "short"}')
    llm = make_llm(server)
    schema = {"type": "object", "properties": {"summary": {"type": "string"}}}
    text = await llm.run_inference(
        LLMContext([USER]), max_tokens=40, system_instruction="Summarise.", response_schema=schema
    )
    assert text == '{"summary": "short"}'
    (body,) = server.responses_requests
    assert body["instructions"] == "Summarise." and body["max_output_tokens"] == 40
    assert body["text"]["format"]["schema"] == schema


@pytest.mark.parametrize(
    ("model", "effort"),
    [("gpt-5", "minimal"), ("gpt-5.2-2025-12-11", "none"), ("gpt-5-pro", "high"), ("o3", "low")],
)
async def test_use_provider_thinking_default_sends_no_lowest_effort(
    server: FakeOpenAIServer, model: str, effort: str
) -> None:
    unset = make_llm(server, model=model)
    assert unset.settings.use_provider_thinking_default is False  # unset counts as False
    await run_test(unset, [turn(USER)])
    for flag in (False, True):
        await run_test(
            make_llm(server, model=model, use_provider_thinking_default=flag), [turn(USER)]
        )
    assert [body.get("reasoning") for body in server.responses_requests] == [
        {"effort": effort},
        {"effort": effort},
        None,
    ]
    assert "include" not in server.responses_requests[2]


async def test_use_provider_thinking_default_changes_mid_call(server: FakeOpenAIServer) -> None:
    llm = make_llm(server, model="gpt-5.4")
    on = LLMUpdateSettingsFrame(delta=LLMSettings(use_provider_thinking_default=True))
    off = LLMUpdateSettingsFrame(
        delta=OpenAIResponsesLLMService.Settings(use_provider_thinking_default=False)
    )
    await run_test(llm, [turn(USER), on, turn(USER), off, turn(USER)])
    assert [body.get("reasoning") for body in server.responses_requests] == [
        {"effort": "none"},
        None,
        {"effort": "none"},
    ]


async def test_configured_reasoning_is_sent_whatever_the_flag(server: FakeOpenAIServer) -> None:
    reasoning = OpenAIResponsesLLMService.ReasoningConfig(effort="high")
    llm = make_llm(server, model="gpt-5", reasoning=reasoning, use_provider_thinking_default=True)
    await run_test(llm, [turn(USER)])
    (body,) = server.responses_requests
    assert body["reasoning"] == {"effort": "high"}
