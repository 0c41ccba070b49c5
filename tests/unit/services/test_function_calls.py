"""Function calling with the 1.14 API: LLMContext + FunctionSchema, frames, interruption."""

from __future__ import annotations

import asyncio
import inspect
import logging
import typing
from collections.abc import AsyncIterator

import pytest

from callpipe.adapters.llm.schemas.direct_function import tool_options
from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import (
    EndFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMTextFrame,
    LLMUpdateSettingsFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.aggregators import async_tool_messages
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.llm_service import FunctionCallParams, FunctionCallResultCallback
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.workers.runner import WorkerRunner

from .helpers import openai_llm as make_llm
from .helpers import run_then

WEATHER = FunctionSchema(
    name="get_weather",
    description="Weather in a city",
    properties={"city": {"type": "string"}},
    required=["city"],
)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


def of(kind: type[Frame], frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if isinstance(f, kind)]


async def test_tool_turn_with_llm_context(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    server.add_chat_reply("It is sunny in Paris.")
    llm = make_llm(server)
    seen: list[FunctionCallParams] = []

    async def get_weather(params: FunctionCallParams) -> None:
        seen.append(params)
        await params.result_callback({"conditions": "sunny"})

    llm.register_function("get_weather", get_weather)
    context = LLMContext([{"role": "user", "content": "weather?"}], tools=ToolsSchema([WEATHER]))
    down, up = await run_test(llm, [LLMContextFrame(context=context)])

    assert seen[0].arguments == {"city": "Paris"} and seen[0].context is context
    assert server.chat_requests[0]["tools"][0]["function"]["name"] == "get_weather"
    second = server.chat_requests[1]["messages"]
    assert second[-1]["role"] == "tool" and '"sunny"' in second[-1]["content"]
    assert "".join(f.text for f in of(LLMTextFrame, down)) == "It is sunny in Paris."  # type: ignore[attr-defined]
    # The frames bots and mute strategies watch go both ways.
    for frames in (down, up):
        assert of(FunctionCallsStartedFrame, frames)
        assert of(FunctionCallInProgressFrame, frames)
        result = of(FunctionCallResultFrame, frames)
        assert result and result[0].function_name == "get_weather"  # type: ignore[attr-defined]


async def test_schema_handler_runs_without_registration(server: FakeOpenAIServer) -> None:
    calls: list[str] = []

    async def handler(params: FunctionCallParams) -> dict[str, str]:
        calls.append(params.arguments["city"])
        return {"ok": "yes"}

    schema = FunctionSchema("get_weather", "w", {"city": {"type": "string"}}, ["city"], handler)
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    server.add_chat_reply("Done.")
    context = LLMContext([{"role": "user", "content": "?"}], tools=[schema])
    await run_test(make_llm(server), [LLMContextFrame(context=context)])
    assert calls == ["Oslo"]
    assert context.messages[-1]["content"] == '{"ok": "yes"}'  # type: ignore[index]


async def test_run_llm_false_keeps_the_model_quiet(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    llm = make_llm(server)

    async def quiet(params: FunctionCallParams) -> None:
        await params.result_callback(
            "noted", properties=FunctionCallResultProperties(run_llm=False)
        )

    llm.register_function("get_weather", quiet)
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER])
    await run_test(llm, [LLMContextFrame(context=context)])
    assert len(server.chat_requests) == 1
    assert context.messages[-1] == {
        "role": "tool",
        "tool_call_id": "call_fake_0",
        "content": "noted",
    }


async def test_parallel_calls_run_concurrently(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "A"}},
            {"name": "get_weather", "arguments": {"city": "B"}},
        ]
    )
    server.add_chat_reply("Both.")
    llm = make_llm(server)
    running = 0
    peak = 0

    async def slow(params: FunctionCallParams) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1)
        running -= 1
        return params.arguments["city"]

    llm.register_function("get_weather", slow)
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER])
    await run_test(llm, [LLMContextFrame(context=context)])
    assert peak == 2
    assert [m["content"] for m in context.messages if m.get("role") == "tool"] == ["A", "B"]  # type: ignore[union-attr]


async def test_interruption_cancels_the_call_and_leaves_no_dangling_tool_call(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "X"}}])
    llm = make_llm(server)
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever(params: FunctionCallParams) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    llm.register_function("get_weather", forever)
    events: list[str] = []
    llm.add_event_handler("on_function_calls_started", lambda s, calls: events.append("started"))
    llm.add_event_handler(
        "on_function_calls_cancelled",
        lambda s, calls: events.append(f"cancelled {calls[0].function_name}"),
    )
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER])
    down = await run_then(
        llm,
        [LLMContextFrame(context=context)],
        [InterruptionFrame(), SleepFrame(0.1)],
        when=lambda out: started.is_set(),
    )
    assert cancelled.is_set()
    assert events == ["started", "cancelled get_weather"]
    assert of(FunctionCallCancelFrame, down)
    assert not of(FunctionCallResultFrame, down)
    assert [m.get("role") for m in context.messages] == ["user"]  # type: ignore[union-attr]
    assert len(server.chat_requests) == 1


async def test_non_cancellable_call_outlives_the_interruption(server: FakeOpenAIServer) -> None:
    # The older API's behaviour (an LLMContext makes such a call asynchronous, see
    # test_async_function_calls.py).
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "X"}}])
    llm = make_llm(server)
    started = asyncio.Event()

    async def booking(params: FunctionCallParams) -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "booked"

    llm.register_function("get_weather", booking, cancel_on_interruption=False)
    context = OpenAILLMContext([{"role": "user", "content": "?"}], tools=ToolsSchema([WEATHER]))
    await run_then(
        llm,
        [OpenAILLMContextFrame(context=context)],
        [InterruptionFrame(), SleepFrame(0.4)],
        when=lambda out: started.is_set(),
    )
    # The side effect happened, so the model will know about it; no reply was asked for.
    assert context.messages[-1] == {
        "role": "tool",
        "tool_call_id": "call_fake_0",
        "content": "booked",
    }
    assert len(server.chat_requests) == 1


async def test_settings_update_frame_changes_the_next_request(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("one")
    server.add_chat_reply("two")
    llm = make_llm(server)
    context = LLMContext([{"role": "user", "content": "?"}])
    down, _ = await run_test(
        llm,
        [
            LLMContextFrame(context=context),
            LLMUpdateSettingsFrame(
                delta=OpenAILLMService.Settings(temperature=0.3, model="other-model")
            ),
            TTSUpdateSettingsFrame(settings={"voice": "v"}),
            LLMContextFrame(context=context),
        ],
    )
    assert "temperature" not in server.chat_requests[0]
    assert server.chat_requests[1]["temperature"] == 0.3
    assert server.chat_requests[1]["model"] == "other-model"
    assert of(TTSUpdateSettingsFrame, down)  # not ours: passed on


async def test_direct_function_with_tool_options(server: FakeOpenAIServer) -> None:
    seen: list[tuple[str, int]] = []

    @tool_options(cancel_on_interruption=False)
    async def book_table(params: FunctionCallParams, name: str, guests: int) -> dict[str, bool]:
        """Book a table.

        Args:
            name: Name for the booking.
            guests: Number of guests.
        """
        seen.append((name, guests))
        return {"booked": True}

    server.add_chat_reply(
        tool_calls=[{"name": "book_table", "arguments": {"name": "Ana", "guests": 3}}]
    )
    server.add_chat_reply("Booked.")
    llm = make_llm(server)
    context = LLMContext([{"role": "user", "content": "book"}], tools=ToolsSchema([book_table]))
    await run_test(llm, [LLMContextFrame(context=context)])
    assert seen == [("Ana", 3)]
    function = server.chat_requests[0]["tools"][0]["function"]
    assert function["parameters"]["required"] == ["name", "guests"]
    assert function["parameters"]["properties"]["guests"]["type"] == "integer"
    registration = llm._registration(context, "book_table")
    assert registration is not None and registration.cancel_on_interruption is False


async def test_run_in_parallel_false_runs_the_calls_one_after_another(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "A"}},
            {"name": "get_weather", "arguments": {"city": "B"}},
            {"name": "get_weather", "arguments": {"city": "C"}},
        ]
    )
    server.add_chat_reply("All three.")
    llm = make_llm(server, run_in_parallel=False)
    running = 0
    peak = 0
    order: list[str] = []

    async def slow(params: FunctionCallParams) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        order.append(params.arguments["city"])
        await asyncio.sleep(0.05 if params.arguments["city"] == "A" else 0.01)
        running -= 1
        return params.arguments["city"]

    llm.register_function("get_weather", slow)
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER])
    await run_test(llm, [LLMContextFrame(context=context)])
    assert peak == 1 and order == ["A", "B", "C"]
    assert [m["content"] for m in context.messages if m.get("role") == "tool"] == ["A", "B", "C"]  # type: ignore[union-attr]
    assert len(server.chat_requests) == 2  # the results went back together, once


async def test_an_interruption_stops_sequential_calls_not_yet_started(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "A"}},
            {"name": "get_weather", "arguments": {"city": "B"}},
        ]
    )
    llm = make_llm(server, run_in_parallel=False)
    started: list[str] = []
    first = asyncio.Event()

    async def forever(params: FunctionCallParams) -> None:
        started.append(params.arguments["city"])
        first.set()
        await asyncio.sleep(30)

    llm.register_function("get_weather", forever)
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER])
    down = await run_then(
        llm,
        [LLMContextFrame(context=context)],
        [InterruptionFrame(), SleepFrame(0.1)],
        when=lambda out: first.is_set(),
    )
    assert started == ["A"]  # B never ran
    assert len(of(FunctionCallCancelFrame, down)) == 2
    assert [m.get("role") for m in context.messages] == ["user"]  # type: ignore[union-attr]


async def test_the_model_cancels_a_cancellable_call(server: FakeOpenAIServer) -> None:
    # 1.14: the call is asynchronous, so the next turn runs while it works (the interruption
    # leaves it running), and its cancel tool is advertised while the function is registered.
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "X"}}])
    server.add_chat_reply(tool_calls=[{"name": "cancel_get_weather", "arguments": {}}])
    server.add_chat_reply("Dropped it.")
    llm = make_llm(server)
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def slow(params: FunctionCallParams) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "done"

    llm.register_function(
        "get_weather", slow, cancel_on_interruption=False, cancellable_by_llm=True
    )
    cancelled: list[str] = []
    llm.add_event_handler(
        "on_function_calls_cancelled",
        lambda s, calls: cancelled.extend(c.tool_call_id for c in calls),
    )
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER])
    down = await run_then(
        llm,
        [LLMContextFrame(context=context)],
        [InterruptionFrame(), SleepFrame(0.05), LLMContextFrame(context=context), SleepFrame(0.3)],
        when=lambda out: started.is_set(),
    )
    assert stopped.is_set()
    assert cancelled == ["call_fake_0"]
    # The cancel tool was advertised while the call ran, and withdrawn once it ended.
    names = [t["function"]["name"] for t in server.chat_requests[1]["tools"]]
    assert names == ["get_weather", "cancel_get_weather"]
    assert [t.name for t in context.function_schemas()] == ["get_weather"]
    cancel_frames = of(FunctionCallCancelFrame, down)
    assert [f.tool_call_id for f in cancel_frames] == ["call_fake_0"]  # type: ignore[attr-defined]
    tool_results = {
        m["tool_call_id"]: m["content"]  # type: ignore[index]
        for m in context.messages
        if m.get("role") == "tool"  # type: ignore[union-attr]
    }
    assert '"cancelled": "call_fake_0"' in tool_results["call_fake_1"]
    # The call's end is a cancellation message (its started message stays as it was).
    ended = [
        async_tool_messages.parse_message(m)
        for m in context.messages
        if m.get("role") == "developer"  # type: ignore[union-attr]
    ]
    assert [(p.kind, p.tool_call_id) for p in ended if p] == [("final", "call_fake_0")]
    assert ended[0] is not None and (ended[0].result or "").startswith("CANCELLED")
    assert len(server.chat_requests) == 3


async def test_cancel_tool_refuses_when_nothing_runs(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)

    async def noop(params: FunctionCallParams) -> None:
        return None

    llm.register_function(
        "get_weather", noop, cancel_on_interruption=False, cancellable_by_llm=True
    )

    async def ignore(result: object, **kwargs: object) -> None:
        return None

    context = LLMContext()
    params = FunctionCallParams("cancel_get_weather", "c1", {}, llm, context, ignore)
    assert (await llm._cancel_tool_handler(params))["cancelled"] is None


def test_cancellable_by_llm_needs_cancel_on_interruption_false(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)

    async def handler(params: FunctionCallParams) -> None:
        return None

    llm.register_function("a", handler, cancellable_by_llm=True)
    llm.register_function("b", handler, cancel_on_interruption=False, cancellable_by_llm=True)
    context = LLMContext()
    a = llm._registration(context, "a")
    b = llm._registration(context, "b")
    assert a is not None and not a.cancellable_by_llm and a.cancel_on_interruption
    assert b is not None and b.cancellable_by_llm and not b.cancel_on_interruption


def test_register_function_reads_tool_options_unless_overridden(
    server: FakeOpenAIServer,
) -> None:
    llm = make_llm(server)

    @tool_options(cancel_on_interruption=False, timeout_secs=3.0, cancellable_by_llm=True)
    async def handler(params: FunctionCallParams) -> None:
        return None

    llm.register_function("a", handler)
    llm.register_function("b", handler, cancel_on_interruption=True)
    a = llm._registration(LLMContext(), "a")
    b = llm._registration(LLMContext(), "b")
    assert a is not None and (a.cancel_on_interruption, a.timeout_secs, a.cancellable_by_llm) == (
        False,
        3.0,
        True,
    )
    assert b is not None and b.cancel_on_interruption and not b.cancellable_by_llm


async def test_register_direct_function(server: FakeOpenAIServer) -> None:
    seen: list[str] = []

    async def get_weather(params: FunctionCallParams, city: str) -> str:
        """Weather in a city.

        Args:
            city: The city.
        """
        seen.append(city)
        return "sunny"

    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    server.add_chat_reply("Sunny.")
    llm = make_llm(server)
    with pytest.warns(DeprecationWarning):
        llm.register_direct_function(get_weather, cancel_on_interruption=False)
    registration = llm._registration(LLMContext(), "get_weather")
    assert registration is not None and not registration.cancel_on_interruption
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER])
    await run_test(llm, [LLMContextFrame(context=context)])
    assert seen == ["Oslo"]
    with pytest.warns(DeprecationWarning):
        llm.unregister_direct_function(get_weather)
    assert not llm.has_function("get_weather")


def test_tool_resources_is_app_resources(server: FakeOpenAIServer) -> None:
    async def ignore(result: object, **kwargs: object) -> None:
        return None

    params = FunctionCallParams("f", "c", {}, make_llm(server), LLMContext(), ignore)
    params.app_resources = {"db": 1}
    with pytest.warns(DeprecationWarning):
        assert params.tool_resources == {"db": 1}


async def test_a_handler_gets_the_worker_its_app_resources_and_its_runner(
    server: FakeOpenAIServer,
) -> None:
    """``PipelineWorker(app_resources=...)`` reaches the handlers (the same object), as in 1.14."""
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    server.add_chat_reply("Snowing in Oslo.")
    llm = make_llm(server)
    seen: list[FunctionCallParams] = []
    db = {"Oslo": "snow"}

    async def get_weather(params: FunctionCallParams) -> None:
        seen.append(params)
        await params.result_callback(params.app_resources[params.arguments["city"]])
        await worker.queue_frame(EndFrame())

    llm.register_function("get_weather", get_weather)
    context = LLMContext([{"role": "user", "content": "weather?"}], tools=ToolsSchema([WEATHER]))
    worker = PipelineWorker(Pipeline([llm]), app_resources=db)
    runner = WorkerRunner(handle_sigint=False)
    await worker.queue_frame(LLMContextFrame(context=context))
    await runner.add_workers(worker)
    await asyncio.wait_for(runner.run(), 10)

    [params] = seen
    assert params.app_resources is db
    assert params.pipeline_worker is worker and params.worker_runner is runner
    assert llm.pipeline_worker is worker and llm.worker_runner is runner
    assert [m["content"] for m in context.messages if m["role"] == "tool"] == ["snow"]


def test_result_callback_is_typed_with_function_call_result_callback() -> None:
    assert typing.get_type_hints(FunctionCallParams)["result_callback"] is (
        FunctionCallResultCallback
    )
    call = FunctionCallResultCallback.__call__
    assert inspect.iscoroutinefunction(call)
    properties = inspect.signature(call).parameters["properties"]
    assert properties.kind is inspect.Parameter.KEYWORD_ONLY and properties.default is None


async def test_cancel_function_calls_from_a_handler(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
            {"name": "get_weather", "arguments": {"city": "Rome"}},
        ]
    )
    llm = make_llm(server)
    oslo_running = asyncio.Event()
    stopped: list[str] = []
    returned: list[str] = []

    async def get_weather(params: FunctionCallParams) -> str:
        city = params.arguments["city"]
        if city == "Rome":
            await oslo_running.wait()
            cancelled = await params.llm.cancel_function_calls(reason="no longer needed")
            returned.extend(f.tool_call_id for f in cancelled)
        else:
            oslo_running.set()
        try:
            await asyncio.sleep(30)  # Rome's own call is cancelled once cancel returned
        except asyncio.CancelledError:
            stopped.append(city)
            raise
        return "sunny"

    llm.register_function("get_weather", get_weather)
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER])
    down, up = await run_test(llm, [LLMContextFrame(context=context)])
    assert sorted(returned) == ["call_fake_0", "call_fake_1"]
    assert sorted(stopped) == ["Oslo", "Rome"]
    assert len(server.chat_requests) == 1  # no inference for the cancellations
    tool_messages = [m for m in context.messages if m.get("role") == "tool"]  # type: ignore[union-attr]
    assert [m["content"] for m in tool_messages] == ['{"error": "cancelled"}'] * 2  # type: ignore[index]
    for frames in (down, up):
        assert sorted(f.tool_call_id for f in of(FunctionCallCancelFrame, frames)) == [  # type: ignore[attr-defined]
            "call_fake_0",
            "call_fake_1",
        ]
        assert not of(FunctionCallResultFrame, frames)


async def test_a_progress_report_never_becomes_the_result_with_the_older_api(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    server.add_chat_reply("Sunny.")
    llm = make_llm(server)

    async def get_weather(params: FunctionCallParams) -> str:
        report = FunctionCallResultProperties(is_final=False)
        await params.result_callback("halfway", properties=report)
        return "sunny"

    llm.register_function("get_weather", get_weather, cancel_on_interruption=False)
    context = OpenAILLMContext([{"role": "user", "content": "?"}], tools=ToolsSchema([WEATHER]))
    with caplog.at_level(logging.WARNING, logger="callpipe.services.llm_service"):
        down, _ = await run_test(llm, [OpenAILLMContextFrame(context=context)])
    # The model waits for the call there, so the report cannot reach it: dropped, with a warning.
    assert context.messages[-1]["content"] == "sunny"
    assert server.chat_requests[1]["messages"][-1]["content"] == "sunny"
    assert any("dropping the intermediate result" in r.getMessage() for r in caplog.records)
    results = [
        (f.result, f.properties is None or f.properties.is_final)  # type: ignore[attr-defined]
        for f in of(FunctionCallResultFrame, down)
    ]
    assert results == [("halfway", False), ("sunny", True)]
