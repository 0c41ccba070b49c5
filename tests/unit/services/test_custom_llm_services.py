"""Custom LLM services written the way a Pipecat 1.14 user writes them run on callpipe.

``AcmeLLMService`` below follows Pipecat's subclass contract for ``LLMService``: it overrides
``process_frame`` (``super()`` first, then its own ``_process_context`` on an
``LLMContextFrame``, every other frame pushed on), builds its request with the adapter's
``get_llm_invocation_params``, streams ``LLMTextFrame``\\ s between the response frames,
reports TTFB, processing and token usage, hands tool calls to ``run_function_calls`` as
``FunctionCallFromLLM``\\ s and implements ``run_inference``; the word ``pipecat`` replaced by
``callpipe`` in its imports. Its provider is ``FakeOpenAIServer`` on 127.0.0.1, spoken to with
httpx.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.adapters.llm.services.open_ai_adapter import OpenAILLMAdapter
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    LLMUpdateSettingsFrame,
    MetricsFrame,
    StartFrame,
)
from callpipe.metrics.metrics import (
    LLMTokenUsage,
    LLMUsageMetricsData,
    ProcessingMetricsData,
    TTFBMetricsData,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services.llm_service import FunctionCallParams, LLMService
from callpipe.services.settings import LLMSettings
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer

from .helpers import emitted, errors, of, run_then, texts

METRICS = PipelineParams(enable_metrics=True, enable_usage_metrics=True)


class AcmeLLMService(LLMService):
    """An LLM service for "Acme", an OpenAI-compatible provider, on Pipecat's base class."""

    def __init__(
        self, *, api_key: str, base_url: str, model: str = "acme-1", **kwargs: Any
    ) -> None:
        super().__init__(
            settings=LLMSettings(model=model, system_instruction="You are Acme."), **kwargs
        )
        self._api_key = api_key
        self._base_url = base_url
        self._client: httpx.AsyncClient | None = None
        self.settings_changes: list[set[str]] = []

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url, headers={"Authorization": f"Bearer {self._api_key}"}
            )
        return self._client

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        self._http()

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._close()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._close()

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _update_settings(self, delta: LLMSettings) -> dict[str, Any]:
        changed = await super()._update_settings(delta)
        self.settings_changes.append(set(changed))
        return changed

    async def _request(
        self, context: LLMContext, system_instruction: Any, **extra: Any
    ) -> dict[str, Any]:
        adapter = self.get_llm_adapter()
        params = await adapter.get_llm_invocation_params(
            context,
            system_instruction=system_instruction,
            convert_developer_to_user=False,
        )
        return {"model": self._settings.model, "stream": True, **params, **extra}

    async def _chunks(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async with self._http().stream("POST", "/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                yield json.loads(data)

    async def _process_context(self, context: LLMContext) -> None:
        body = await self._request(
            context,
            self._settings.system_instruction,
            stream_options={"include_usage": True},
        )
        await self.start_ttfb_metrics()
        calls: dict[int, dict[str, str]] = {}
        async for chunk in self._chunks(body):
            await self.stop_ttfb_metrics()
            usage = chunk.get("usage")
            if usage:
                await self.start_llm_usage_metrics(
                    LLMTokenUsage(
                        prompt_tokens=usage["prompt_tokens"],
                        completion_tokens=usage["completion_tokens"],
                        total_tokens=usage["total_tokens"],
                    )
                )
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    await self.push_frame(LLMTextFrame(delta["content"]))
                for tool_call in delta.get("tool_calls") or []:
                    call = calls.setdefault(
                        tool_call["index"], {"id": "", "name": "", "arguments": ""}
                    )
                    function = tool_call.get("function") or {}
                    call["id"] = tool_call.get("id") or call["id"]
                    call["name"] += function.get("name") or ""
                    call["arguments"] += function.get("arguments") or ""
        if calls:
            await self.run_function_calls(
                [
                    FunctionCallFromLLM(
                        function_name=call["name"],
                        tool_call_id=call["id"],
                        arguments=json.loads(call["arguments"] or "{}"),
                        context=context,
                    )
                    for call in calls.values()
                ]
            )

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            try:
                await self.push_frame(LLMFullResponseStartFrame())
                await self.start_processing_metrics()
                await self._process_context(frame.context)
            except httpx.HTTPError as e:
                await self.push_error(error_msg=f"Acme error: {e}", exception=e)
            finally:
                await self.stop_processing_metrics()
                await self.push_frame(LLMFullResponseEndFrame())
        else:
            await self.push_frame(frame, direction)

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        instruction = system_instruction or self._settings.system_instruction
        extra = {"max_tokens": max_tokens} if max_tokens is not None else {}
        body = await self._request(context, instruction, **extra)
        parts: list[str] = []
        async for chunk in self._chunks(body):
            for choice in chunk.get("choices") or []:
                parts.append((choice.get("delta") or {}).get("content") or "")
        return "".join(parts) or None


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


def acme(server: FakeOpenAIServer) -> AcmeLLMService:
    return AcmeLLMService(api_key="test-key", base_url=server.base_url)


WEATHER = FunctionSchema(
    name="get_weather",
    description="The weather in a city.",
    properties={"city": {"type": "string"}},
    required=["city"],
)


def weather_context() -> LLMContext:
    return LLMContext(
        [{"role": "user", "content": "Weather in Paris?"}], tools=ToolsSchema([WEATHER])
    )


async def test_text_streams_between_the_response_frames_of_one_run(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply("Hello there, caller.")
    context = LLMContext([{"role": "user", "content": "hi"}])
    down, up = await run_test(acme(server), [LLMContextFrame(context=context)])

    # The base neither ran a completion of its own nor pushed the frames the service pushes.
    assert len(server.chat_requests) == 1
    assert not errors(up)
    kinds = [type(f) for f in down]
    assert kinds == [
        LLMServiceMetadataFrame,
        LLMFullResponseStartFrame,
        *[LLMTextFrame] * kinds.count(LLMTextFrame),
        LLMFullResponseEndFrame,
        EndFrame,
    ]
    assert texts(down) == "Hello there, caller."
    assert len(of(up, LLMServiceMetadataFrame)) == 1


async def test_the_adapter_builds_the_request_from_the_context(server: FakeOpenAIServer) -> None:
    llm = acme(server)
    assert isinstance(llm.get_llm_adapter(), OpenAILLMAdapter)
    context = weather_context()
    context.add_message({"role": "developer", "content": "Be brief."})
    context.set_tool_choice("auto")
    server.add_chat_reply("Sunny.")
    await run_test(llm, [LLMContextFrame(context=context)])

    body = server.chat_requests[0]
    assert body["messages"] == [
        {"role": "system", "content": "You are Acme."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "developer", "content": "Be brief."},
    ]
    assert body["tools"] == [{"type": "function", "function": WEATHER.to_default_dict()}]
    assert body["tool_choice"] == "auto"
    # The adapter's messages are a copy, developer messages as user ones when asked.
    params = await llm.get_llm_adapter().get_llm_invocation_params(
        context, convert_developer_to_user=True
    )
    assert params["messages"][-1] == {"role": "user", "content": "Be brief."}
    assert context.messages[-1]["role"] == "developer"
    bare = await llm.get_llm_adapter().get_llm_invocation_params(LLMContext())
    assert bare == {"messages": []}


async def test_a_tool_call_runs_its_handler_and_the_model_answers_from_the_result(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    server.add_chat_reply("It is sunny in Paris.")
    llm = acme(server)
    seen: list[FunctionCallParams] = []

    async def get_weather(params: FunctionCallParams) -> None:
        seen.append(params)
        await params.result_callback({"conditions": "sunny"})

    llm.register_function("get_weather", get_weather)
    context = weather_context()
    down, _ = await run_test(llm, [LLMContextFrame(context=context)])

    assert [(p.function_name, p.arguments, p.llm) for p in seen] == [
        ("get_weather", {"city": "Paris"}, llm)
    ]
    assert seen[0].context is context
    assert len(of(down, FunctionCallsStartedFrame)) == 1
    assert len(of(down, FunctionCallInProgressFrame)) == 1
    [result] = of(down, FunctionCallResultFrame)
    assert result.tool_call_id == seen[0].tool_call_id
    # The result is in the context, and the next run of the model saw it.
    tool_messages = [m for m in context.messages if m.get("role") == "tool"]
    assert tool_messages == [
        {
            "role": "tool",
            "tool_call_id": seen[0].tool_call_id,
            "content": json.dumps({"conditions": "sunny"}),
        }
    ]
    assert len(server.chat_requests) == 2
    follow_up = server.chat_requests[1]["messages"]
    assert follow_up[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert follow_up[-1]["role"] == "tool"
    assert texts(down) == "It is sunny in Paris."
    assert len(of(down, LLMFullResponseStartFrame)) == len(of(down, LLMFullResponseEndFrame)) == 2


async def test_a_result_that_asks_for_no_run_ends_the_turn(server: FakeOpenAIServer) -> None:
    from callpipe.frames.frames import FunctionCallResultProperties

    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    llm = acme(server)

    async def get_weather(params: FunctionCallParams) -> None:
        await params.result_callback("snow", properties=FunctionCallResultProperties(run_llm=False))

    llm.register_function("get_weather", get_weather)
    context = weather_context()
    await run_test(llm, [LLMContextFrame(context=context)])
    assert len(server.chat_requests) == 1
    assert context.messages[-1] == {
        "role": "tool",
        "tool_call_id": context.messages[-2]["tool_calls"][0]["id"],
        "content": "snow",
    }


async def test_usage_ttfb_and_processing_metrics_are_reported(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("One two three.")
    context = LLMContext([{"role": "user", "content": "count"}])
    llm = AcmeLLMService(api_key="test-key", base_url=server.base_url, name="acme")
    down, _ = await run_test(llm, [LLMContextFrame(context=context)], params=METRICS)

    data = [d for f in of(down, MetricsFrame) for d in f.data]
    [ttfb] = [d for d in data if isinstance(d, TTFBMetricsData)]
    [processing] = [d for d in data if isinstance(d, ProcessingMetricsData)]
    [usage] = [d for d in data if isinstance(d, LLMUsageMetricsData)]
    assert 0 < ttfb.value <= processing.value
    assert usage.value is not None and usage.value.prompt_tokens == 10
    assert usage.value.total_tokens == usage.value.prompt_tokens + usage.value.completion_tokens
    assert ttfb.processor == processing.processor == usage.processor == "acme"


async def test_no_usage_without_usage_metrics(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Quiet.")
    context = LLMContext([{"role": "user", "content": "hi"}])
    down, _ = await run_test(acme(server), [LLMContextFrame(context=context)])
    assert not of(down, MetricsFrame)


async def test_an_interruption_stops_the_stream(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(" ".join(f"word{n}" for n in range(40)), chunk_delay=0.02)
    context = LLMContext([{"role": "user", "content": "talk"}])
    llm = acme(server)
    down = await run_then(
        llm,
        [LLMContextFrame(context=context)],
        [InterruptionFrame()],
        when=emitted(LLMTextFrame),
    )
    kinds = [type(f) for f in down]
    assert InterruptionFrame in kinds
    assert "word39" not in texts(down)
    # The interrupted response still ended, before the interruption went on.
    assert kinds.index(LLMFullResponseEndFrame) < kinds.index(InterruptionFrame)
    assert server.cancelled_streams == 1


async def test_an_interruption_cancels_a_running_tool_call(server: FakeOpenAIServer) -> None:
    import asyncio

    from callpipe.frames.frames import FunctionCallCancelFrame

    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    llm = acme(server)
    cancelled = asyncio.Event()

    async def get_weather(params: FunctionCallParams) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    llm.register_function("get_weather", get_weather)
    context = weather_context()
    down = await run_then(
        llm,
        [LLMContextFrame(context=context)],
        [InterruptionFrame()],
        when=emitted(FunctionCallInProgressFrame),
    )
    assert cancelled.is_set()
    assert [f.function_name for f in of(down, FunctionCallCancelFrame)] == ["get_weather"]
    assert not of(down, FunctionCallResultFrame)
    assert len(server.chat_requests) == 1  # no run on a result that never came


async def test_run_inference_is_one_completion_outside_the_pipeline(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply("A short summary.")
    llm = acme(server)
    context = LLMContext([{"role": "user", "content": "Summarize our talk."}])
    try:
        text = await llm.run_inference(context, max_tokens=30, system_instruction="Summarize.")
    finally:
        await llm._close()
    assert text == "A short summary."
    body = server.chat_requests[0]
    assert body["max_tokens"] == 30
    assert body["messages"][0] == {"role": "system", "content": "Summarize."}


async def test_settings_updates_reach_the_services_hook(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Fine.")
    llm = acme(server)
    context = LLMContext([{"role": "user", "content": "hi"}])
    await run_test(
        llm,
        [
            LLMUpdateSettingsFrame(delta=LLMSettings(temperature=0.4)),
            LLMContextFrame(context=context),
        ],
    )
    assert llm.settings_changes == [{"temperature"}]
    assert llm.settings.temperature == 0.4


async def test_configured_output_marks_the_pushed_text_skip_tts(server: FakeOpenAIServer) -> None:
    from callpipe.frames.frames import LLMConfigureOutputFrame

    server.add_chat_reply("Internal note.")
    context = LLMContext([{"role": "user", "content": "hi"}])
    down, _ = await run_test(
        acme(server),
        [LLMConfigureOutputFrame(skip_tts=True), LLMContextFrame(context=context)],
    )
    assert texts(down) == "Internal note."
    assert all(f.skip_tts for f in of(down, LLMTextFrame))


def test_callpipe_own_services_keep_their_contract() -> None:
    from callpipe.services.openai.llm import OpenAILLMService
    from callpipe.services.openai.realtime.llm import OpenAIRealtimeLLMService

    assert AcmeLLMService._pipecat_subclass
    assert not OpenAILLMService._pipecat_subclass
    assert not OpenAIRealtimeLLMService._pipecat_subclass

    class Intercepting(OpenAIRealtimeLLMService):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)

    assert not Intercepting._pipecat_subclass
