"""The official ``anthropic`` SDK against FakeAnthropicServer, and our requests against the SDK.

Every event the fake streams must validate as the SDK's ``RawMessageStreamEvent`` (or be a
``ping``, or an ``ErrorResponse``), and the SDK must stream and accumulate through it. Each
request body our service sends must be one the SDK builds from the same parameters: fed to
``messages.create``, the SDK sends exactly the same JSON and the same ``anthropic-beta``.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, ModelInfo, RawMessageStreamEvent
from anthropic.types.message_create_params import MessageCreateParamsStreaming
from anthropic.types.shared.error_response import ErrorResponse
from pydantic import TypeAdapter

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import ErrorFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext, LLMContextFrame
from callpipe.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from callpipe.services.anthropic.llm import AnthropicLLMService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeAnthropicServer

EVENT = TypeAdapter(RawMessageStreamEvent)
SAMPLING = ("temperature", "top_k", "top_p")
"""Documented request fields the SDK no longer lists as parameters (sent via ``extra_body``)."""


def sdk(fake: FakeAnthropicServer, key: str = "test-key") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=key, base_url=fake.base_url, max_retries=0)


async def raw_events(fake: FakeAnthropicServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The fake's SSE stream as sent, each ``data`` checked against its ``event`` name."""
    headers = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        response = await client.post("/v1/messages", json=body, headers=headers)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for chunk in response.text.split("\n\n"):
        if not chunk.strip():
            continue
        name_line, data_line = chunk.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[6:])
        assert data["type"] == name_line[7:]
        events.append(data)
    return events


def check_event(data: dict[str, Any]) -> None:
    if data["type"] == "ping":
        assert data == {"type": "ping"}
    elif data["type"] == "error":
        ErrorResponse.model_validate(data)
    else:
        EVENT.validate_python(data)


async def test_every_streamed_event_validates_as_the_sdk_types() -> None:
    async with FakeAnthropicServer() as fake:
        fake.add_reply(
            "Checking.",
            thinking="Weather means the tool.",
            tool_calls=[{"name": "get_weather", "input": {"city": "Oslo"}}],
            cache_read_tokens=50,
        )
        fake.add_reply("Half", stream_error="overloaded_error", error_message="Overloaded")
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 2000,
            "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "Weather?"}],
        }
        events = await raw_events(fake, body)
        failed = await raw_events(fake, body)
    for data in events + failed:
        check_event(data)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message_start", "ping"] and kinds[-2:] == [
        "message_delta",
        "message_stop",
    ]
    deltas = {e["delta"]["type"] for e in events if e["type"] == "content_block_delta"}
    assert deltas == {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"}
    assert failed[-1]["type"] == "error" and failed[-1]["error"]["type"] == "overloaded_error"


async def test_sdk_streams_and_accumulates_through_the_fake() -> None:
    async with FakeAnthropicServer() as fake:
        fake.add_reply(
            "It is cold.",
            thinking="Check the tool.",
            tool_calls=[{"name": "get_weather", "input": {"city": "Oslo"}}],
        )
        fake.add_reply("Plain answer.")
        client = sdk(fake)
        async with client.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=2000,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "Weather?"}],
        ) as stream:
            message = await stream.get_final_message()
        plain = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            messages=[{"role": "user", "content": "Hi"}],
        )
        model = await client.models.retrieve("claude-sonnet-4-6")
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    thinking, answer, call = message.content
    assert thinking.type == "thinking" and thinking.thinking == "Check the tool."
    assert thinking.signature in fake.signatures
    assert answer.type == "text" and answer.text == "It is cold."
    assert call.type == "tool_use" and call.input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use" and message.usage.output_tokens > 1
    Message.model_validate(plain.model_dump())
    assert plain.content[0].type == "text" and plain.content[0].text == "Plain answer."
    ModelInfo.model_validate(model.model_dump())


async def test_sdk_sees_errors_as_anthropic_reports_them() -> None:
    async with FakeAnthropicServer() as fake:
        fake.add_reply(status=529, error_message="Overloaded")
        with pytest.raises(anthropic.AuthenticationError) as denied:
            await sdk(fake, "wrong").messages.create(
                model="claude-sonnet-4-6",
                max_tokens=10,
                messages=[{"role": "user", "content": "x"}],
            )
        with pytest.raises(anthropic.OverloadedError):
            await sdk(fake).messages.create(
                model="claude-sonnet-4-6",
                max_tokens=10,
                messages=[{"role": "user", "content": "x"}],
            )
    assert denied.value.status_code == 401
    ErrorResponse.model_validate(denied.value.body)


async def test_our_requests_are_what_the_sdk_sends() -> None:
    weather = FunctionSchema("get_weather", "Weather in a city", {"city": {"type": "string"}}, [])
    async with FakeAnthropicServer() as fake:
        fake.add_reply(
            thinking="Use the tool.",
            tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}],
        )
        fake.add_reply("Sunny.")
        llm = AnthropicLLMService(
            api_key="test-key",
            base_url=fake.base_url,
            params=AnthropicLLMService.InputParams(temperature=0.5, top_p=0.9),
            settings=AnthropicLLMService.Settings(
                model="claude-sonnet-4-6",
                enable_prompt_caching=True,
                system_instruction="You tell the weather.",
                thinking=AnthropicLLMService.ThinkingConfig(type="enabled", budget_tokens=1024),
            ),
        )

        async def get_weather(params: FunctionCallParams) -> None:
            await params.result_callback({"forecast": "sunny"})

        llm.register_function("get_weather", get_weather)
        context = LLMContext(
            [{"role": "user", "content": "Weather in Paris?"}],
            tools=ToolsSchema(standard_tools=[weather]),
            tool_choice="auto",
        )
        _, assistant = LLMContextAggregatorPair(context)
        _, up = await run_test(Pipeline([llm, assistant]), [LLMContextFrame(context)])
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        ours = list(zip(fake.requests, fake.headers, strict=True))
        assert len(ours) == 2
        known = MessageCreateParamsStreaming.__optional_keys__ | {"stream"}
        client = sdk(fake)
        for body, headers in ours:
            assert set(body) - set(SAMPLING) <= known
            params = {k: v for k, v in body.items() if k not in SAMPLING}
            extra = {k: body[k] for k in SAMPLING if k in body}
            stream = await client.beta.messages.create(
                **params, betas=[headers["anthropic-beta"]], extra_body=extra
            )
            async for _ in stream:
                pass
            sent, sent_headers = fake.requests[-1], fake.headers[-1]
            assert json.dumps(sent, sort_keys=True) == json.dumps(body, sort_keys=True)
            assert sent_headers["anthropic-beta"] == headers["anthropic-beta"]
            assert sent_headers["content-type"] == headers["content-type"]
            # We pin the documented 2023-06-01 version and x-api-key; the SDK sends its newer
            # version and a bearer key, which the API (and the fake) accept alike.
            assert headers["anthropic-version"] == "2023-06-01"
            assert headers["x-api-key"] == "test-key"
    second = ours[1][0]
    assert [b["type"] for b in second["messages"][1]["content"]] == ["thinking", "tool_use"]
