"""The official ``openai`` SDK's Responses client against FakeOpenAIServer, and the requests
OpenAIResponsesLLMService sends against the SDK's request params.

Every event the fake streams must parse strictly as the SDK's ``ResponseStreamEvent`` (the
fake's event shapes are the documented ones), the SDK's own stream must end with the response
it describes, and every body our service posts must validate as
``ResponseCreateParamsStreaming``: the request is one the SDK would build.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseStreamEvent,
    response_create_params,
)
from pydantic import BaseModel, TypeAdapter

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.frames.frames import LLMContextFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.responses.llm import OpenAIResponsesLLMService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeOpenAIServer

EVENT = TypeAdapter(ResponseStreamEvent)
CREATE_PARAMS = TypeAdapter(response_create_params.ResponseCreateParamsStreaming)
_STREAMING = response_create_params.ResponseCreateParamsStreaming
KNOWN_KEYS = _STREAMING.__required_keys__ | _STREAMING.__optional_keys__
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": None,
    }
]


def sdk(fake: FakeOpenAIServer) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="test-key", base_url=fake.base_url, max_retries=0)


async def raw_events(fake: FakeOpenAIServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.base_url}/responses", json=body, headers={"Authorization": "Bearer test-key"}
        )
    lines = response.text.splitlines()
    names = [line[6:].strip() for line in lines if line.startswith("event:")]
    events = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    assert names == [event["type"] for event in events]  # each event: line names its data
    return events


def unknown_fields(value: object, where: str = "") -> list[str]:
    """Fields the SDK's models kept as extras (they accept unknown keys), anywhere inside."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        found += [f"{where}.{name}" for name in value.model_extra or {}]
        for name in type(value).model_fields:
            found += unknown_fields(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found += unknown_fields(item, f"{where}[{n}]")
    return found


def strict(event: dict[str, Any]) -> None:
    """``event`` parses as a ResponseStreamEvent with no field the SDK does not know."""
    parsed = EVENT.validate_python(event, strict=True)
    assert parsed.type == event["type"]
    assert unknown_fields(parsed) == []
    assert parsed.model_dump(exclude_unset=True, mode="json") == event


async def test_sdk_streams_text_and_gets_the_completed_response() -> None:
    async with FakeOpenAIServer() as fake:
        fake.add_chat_reply("Hello from the fake.")
        stream = await sdk(fake).responses.create(
            model="gpt-4.1", input=[{"role": "user", "content": "hi"}], stream=True
        )
        events = [event async for event in stream]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hello from the fake."
    final = events[-1]
    assert isinstance(final, ResponseCompletedEvent)
    assert final.response.output_text == "Hello from the fake."
    assert final.response.usage is not None and final.response.usage.input_tokens == 10
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_sdk_assembles_a_function_call() -> None:
    async with FakeOpenAIServer() as fake:
        fake.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        stream = await sdk(fake).responses.create(
            model="gpt-4.1", input="weather?", tools=TOOLS, stream=True
        )
        events = [event async for event in stream]
    final = events[-1]
    assert isinstance(final, ResponseCompletedEvent)
    (call,) = final.response.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id == "call_fake_0"


@pytest.mark.parametrize(
    "reply",
    [
        {"text": "Plain words here."},
        {"text": "Checked.", "reasoning": "Think it over", "reasoning_tokens": 7},
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"text": "Half", "failed_code": "server_error", "error_message": "boom"},
        {"text": "Cut", "incomplete_reason": "max_output_tokens"},
    ],
    ids=["text", "reasoning", "tool", "failed", "incomplete"],
)
async def test_every_event_the_fake_streams_is_an_sdk_event(reply: dict[str, Any]) -> None:
    async with FakeOpenAIServer() as fake:
        fake.add_chat_reply(**reply)
        body = {"model": "gpt-5", "input": "hi", "stream": True, "tools": TOOLS}
        events = await raw_events(fake, body)
    for event in events:
        strict(event)
    ending = "completed"
    if "failed_code" in reply:
        ending = "failed"
    elif "incomplete_reason" in reply:
        ending = "incomplete"
    assert events[-1]["type"] == f"response.{ending}"


async def test_the_service_requests_are_sdk_create_params() -> None:
    async with FakeOpenAIServer() as fake:
        fake.add_chat_reply(
            reasoning="Look it up",
            tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}],
        )
        fake.add_chat_reply("Sunny in Rome.")

        async def get_weather(params: FunctionCallParams) -> None:
            await params.result_callback({"forecast": "sunny"})

        settings = OpenAIResponsesLLMService.Settings(
            model="gpt-5",
            system_instruction="Be brief.",
            temperature=0.3,
            max_completion_tokens=200,
            reasoning=OpenAIResponsesLLMService.ReasoningConfig(effort="low", summary="auto"),
        )
        llm = OpenAIResponsesLLMService(
            api_key="test-key", base_url=fake.base_url, settings=settings, service_tier="flex"
        )
        llm.register_function("get_weather", get_weather)
        weather = FunctionSchema(
            name="get_weather",
            description="The forecast for a city.",
            properties={"city": {"type": "string"}},
            required=["city"],
        )
        context = LLMContext([{"role": "user", "content": "weather in Rome?"}], tools=[weather])
        context.set_tool_choice("auto")
        await run_test(llm, [LLMContextFrame(context=context)], params=PipelineParams())
        bodies = fake.responses_requests
    assert len(bodies) == 2
    for body in bodies:
        CREATE_PARAMS.validate_python(body, strict=True)
        assert set(body) <= KNOWN_KEYS
    kinds = [item.get("type", "message") for item in bodies[1]["input"]]
    assert kinds == ["message", "reasoning", "function_call", "function_call_output"]
