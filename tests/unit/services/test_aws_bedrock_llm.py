"""AWSBedrockLLMService against FakeAWSBedrockServer: text, tools, usage, errors, signing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.errors import CallpipeError, ServiceAuthError
from callpipe.frames.frames import (
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesFrame,
    LLMTextFrame,
    MetricsFrame,
)
from callpipe.metrics.metrics import LLMUsageMetricsData, TTFBMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.services.aws.eventstream import encode_message
from callpipe.services.aws.llm import AWSBedrockLLMService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.testing import run_test
from callpipe.testing.fakes.aws import FAKE_ACCESS_KEY_ID
from callpipe.testing.fakes.bedrock import FakeAWSBedrockServer, event_frame
from callpipe.testing.pipeline import SleepFrame

from .helpers import errors, texts

WEATHER = FunctionSchema(
    name="get_weather",
    description="Weather in a city",
    properties={"city": {"type": "string"}},
    required=["city"],
)
METRICS = PipelineParams(enable_metrics=True, enable_usage_metrics=True)
MODEL = "us.amazon.nova-lite-v1:0"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAWSBedrockServer]:
    async with FakeAWSBedrockServer(secret_key="test-secret") as server:
        yield server


def make_llm(fake: FakeAWSBedrockServer, **kwargs: Any) -> AWSBedrockLLMService:
    kwargs.setdefault("aws_secret_key", "test-secret")
    return AWSBedrockLLMService(
        aws_access_key=FAKE_ACCESS_KEY_ID,
        aws_region="eu-west-1",
        base_url=fake.base_url,
        **kwargs,
    )


def messages() -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def test_the_encoder_round_trips_through_botocores_decoder() -> None:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    frame = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hé"}})
    raw = frame + encode_message({"a": "b"}, b"")
    buffer.add_data(raw[:7])
    assert list(buffer) == []
    buffer.add_data(raw[7:])
    decoded = list(buffer)
    assert decoded[0].headers[":event-type"] == "contentBlockDelta"
    assert decoded[0].payload == b'{"contentBlockIndex": 0, "delta": {"text": "h\\u00e9"}}'
    assert decoded[1].headers == {"a": "b"}


async def test_reply_streams_signed_with_system_and_inference_config(
    fake: FakeAWSBedrockServer,
) -> None:
    fake.add_reply("Hello there, how can I help?")
    llm = make_llm(fake, params=AWSBedrockLLMService.InputParams(max_tokens=200, top_p=0.5))
    down, up = await run_test(llm, [LLMMessagesFrame(messages())], params=METRICS)
    assert not errors(up)
    assert texts(down) == "Hello there, how can I help?"
    assert len([f for f in down if isinstance(f, LLMTextFrame)]) == 6
    kinds = [type(f) for f in down]
    assert kinds.index(LLMFullResponseStartFrame) < kinds.index(LLMTextFrame)
    assert kinds.index(LLMFullResponseEndFrame) > kinds.index(LLMTextFrame)
    assert fake.model_ids == [MODEL]
    assert fake.requests[-1] == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 200, "topP": 0.5},
        "additionalModelRequestFields": {},
    }
    assert "/eu-west-1/bedrock/" in fake.headers[-1]["authorization"]
    data = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    usage = [d for d in data if isinstance(d, LLMUsageMetricsData)]
    assert [(u.value.prompt_tokens, u.value.completion_tokens) for u in usage] == [(12, 7)]
    assert any(isinstance(d, TTFBMetricsData) for d in data)


async def test_tool_call_runs_and_the_result_goes_back_as_blocks(
    fake: FakeAWSBedrockServer,
) -> None:
    fake.add_reply(tool_calls=[{"id": "t1", "name": "get_weather", "arguments": {"city": "Oslo"}}])
    fake.add_reply("It is cold in Oslo.")
    llm = make_llm(fake)
    seen: list[dict[str, Any]] = []

    async def get_weather(params: FunctionCallParams) -> None:
        seen.append(dict(params.arguments))
        await params.result_callback({"temp": -3})

    llm.register_function("get_weather", get_weather)
    context = LLMContext(
        [{"role": "user", "content": "Weather in Oslo?"}], tools=ToolsSchema([WEATHER])
    )
    down, up = await run_test(llm, [LLMContextFrame(context), SleepFrame(0.3)])
    assert not errors(up)
    assert seen == [{"city": "Oslo"}]
    assert texts(down) == "It is cold in Oslo."
    first, second = fake.requests
    spec = first["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["name"] == "get_weather"
    assert spec["inputSchema"]["json"]["required"] == ["city"]
    assert second["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Oslo"}}}
            ],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": '{"temp": -3}'}]}}],
        },
    ]


async def test_tool_blocks_without_tools_get_the_placeholder_tool(
    fake: FakeAWSBedrockServer,
) -> None:
    history = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]
    down, up = await run_test(make_llm(fake), [LLMMessagesFrame(history)])
    assert not errors(up)
    assert texts(down) == "Hello from Bedrock."
    tools = fake.requests[-1]["toolConfig"]["tools"]
    assert [t["toolSpec"]["name"] for t in tools] == ["no_operation"]


async def test_bot_speaking_first_sends_a_user_turn(fake: FakeAWSBedrockServer) -> None:
    only_system = [{"role": "system", "content": "Greet the caller."}]
    _, up = await run_test(make_llm(fake), [LLMMessagesFrame(only_system)])
    assert not errors(up)
    body = fake.requests[-1]
    assert body["messages"] == [{"role": "user", "content": [{"text": "Greet the caller."}]}]
    assert "system" not in body


async def test_settings_override_params(fake: FakeAWSBedrockServer) -> None:
    settings = AWSBedrockLLMService.Settings(
        model="anthropic.claude-3-haiku",
        temperature=0.2,
        stop_sequences=["END"],
        latency="optimized",
    )
    llm = make_llm(
        fake, settings=settings, params=AWSBedrockLLMService.InputParams(temperature=0.9)
    )
    _, up = await run_test(llm, [LLMMessagesFrame(messages())])
    assert not errors(up)
    body = fake.requests[-1]
    assert body["inferenceConfig"] == {"temperature": 0.2, "stopSequences": ["END"]}
    assert body["performanceConfig"] == {"latency": "optimized"}
    assert fake.model_ids == ["anthropic.claude-3-haiku"]


async def test_wrong_secret_is_a_fatal_error(fake: FakeAWSBedrockServer) -> None:
    llm = make_llm(fake, aws_secret_key="not-the-secret")
    _, up = await run_test(llm, [LLMMessagesFrame(messages())])
    [error] = errors(up)
    assert error.fatal
    assert "InvalidSignatureException" in error.error
    assert fake.requests == []


async def test_throttling_is_retried_once_before_any_output(fake: FakeAWSBedrockServer) -> None:
    fake.statuses.append(429)
    fake.add_reply("Second time lucky.")
    down, up = await run_test(make_llm(fake), [LLMMessagesFrame(messages())])
    assert not errors(up)
    assert texts(down) == "Second time lucky."
    assert len(fake.requests) == 2


async def test_throttling_in_the_stream_is_retried_before_any_output(
    fake: FakeAWSBedrockServer,
) -> None:
    fake.add_reply("Never said.", exception="throttlingException", exception_after=1)
    fake.add_reply("Said.")
    down, up = await run_test(make_llm(fake), [LLMMessagesFrame(messages())])
    assert not errors(up)
    assert texts(down) == "Said."


async def test_stream_error_after_output_is_reported_not_retried(
    fake: FakeAWSBedrockServer,
) -> None:
    fake.add_reply("One two three", exception="serviceUnavailableException", exception_after=3)
    down, up = await run_test(make_llm(fake), [LLMMessagesFrame(messages())])
    [error] = errors(up)
    assert not error.fatal
    assert "serviceUnavailableException" in error.error
    assert texts(down) == "One two "
    assert len(fake.requests) == 1


async def test_validation_exception_is_reported(fake: FakeAWSBedrockServer) -> None:
    fake.statuses.append(400)
    _, up = await run_test(make_llm(fake), [LLMMessagesFrame(messages())])
    [error] = errors(up)
    assert not error.fatal
    assert "ValidationException" in error.error
    assert len(fake.requests) == 1


async def test_interruption_closes_the_stream(fake: FakeAWSBedrockServer) -> None:
    fake.event_delay = 0.05
    fake.add_reply(" ".join(["word"] * 40))
    llm = make_llm(fake)
    down, _ = await run_test(
        llm, [LLMMessagesFrame(messages()), SleepFrame(0.3), InterruptionFrame(), SleepFrame(0.2)]
    )
    assert 0 < len([f for f in down if isinstance(f, LLMTextFrame)]) < 40
    assert fake.cancelled_streams == 1
    assert fake.completed_streams == 0


async def test_run_inference_returns_the_text_and_pushes_nothing(
    fake: FakeAWSBedrockServer,
) -> None:
    fake.add_reply("A short summary.")
    llm = make_llm(fake)
    context = LLMContext([{"role": "user", "content": "Summarize."}])
    text = await llm.run_inference(context, max_tokens=50, system_instruction="Summarize well.")
    await llm.disconnect()
    assert text == "A short summary."
    body = fake.requests[-1]
    assert body["system"] == [{"text": "Summarize well."}]
    assert body["inferenceConfig"] == {"maxTokens": 50}


async def test_run_inference_raises_for_refused_keys_and_stream_errors(
    fake: FakeAWSBedrockServer,
) -> None:
    context = LLMContext([{"role": "user", "content": "Summarize."}])
    refused = make_llm(fake, aws_secret_key="wrong")
    with pytest.raises(ServiceAuthError):
        await refused.run_inference(context)
    await refused.disconnect()
    fake.add_reply("Half", exception="validationException", exception_after=1)
    llm = make_llm(fake)
    with pytest.raises(CallpipeError, match="validationException"):
        await llm.run_inference(context)
    await llm.disconnect()
