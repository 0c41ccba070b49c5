"""Pipecat 1.14's asynchronous function calls (``cancel_on_interruption=False`` on an
``LLMContext``), with the OpenAI LLM service against the fake OpenAI server on loopback.

The model does not wait for such a call: a ``started`` tool message answers it at once, the
service is free for the caller's next turns, progress reports and the outcome come as context
messages, and the model runs again to pass the outcome on. The older ``OpenAILLMContext`` keeps
callpipe's earlier behaviour (the model waits for the call).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMUpdateSettingsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineTask
from callpipe.processors.aggregators import async_tool_messages
from callpipe.processors.aggregators.async_tool_messages import (
    ASYNC_TOOL_INSTRUCTIONS,
    AsyncToolMessagePayload,
    parse_message,
)
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services.google.gemini_live.llm import GeminiLiveLLMService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.openai.realtime.llm import OpenAIRealtimeLLMService
from callpipe.services.ultravox.llm import JoinUrlInputParams, UltravoxRealtimeLLMService
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.fakes.openai_realtime import FakeOpenAIRealtimeServer, RealtimeReply
from callpipe.testing.pipeline import FrameCollector, SleepFrame, run_test
from callpipe.turns.user_idle_controller import UserIdleController
from callpipe.turns.user_turn_completion_mixin import UserTurnCompletionConfig
from callpipe.utils import async_tool_cancellation
from callpipe.utils.async_tool_cancellation import ASYNC_TOOL_CANCELLATION_INSTRUCTIONS
from callpipe.utils.context.llm_context_summarization import LLMContextSummarizationUtil

from .helpers import PHONE, texts
from .helpers import openai_llm as make_llm

BOOK = FunctionSchema(
    name="book_table",
    description="Book a table",
    properties={"guests": {"type": "integer"}},
    required=["guests"],
)
WEATHER = FunctionSchema(
    name="get_weather",
    description="Weather in a city",
    properties={"city": {"type": "string"}},
    required=["city"],
)

WAIT = 5.0


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


class Call:
    """The LLM service in a running pipeline, driven step by step."""

    def __init__(self, llm: OpenAILLMService) -> None:
        self.down = FrameCollector(FrameDirection.DOWNSTREAM)
        self.up = FrameCollector(FrameDirection.UPSTREAM)
        self.task = PipelineTask(Pipeline([self.up, llm, self.down]), idle_timeout_secs=None)

    async def send(self, *frames: Frame) -> None:
        for frame in frames:
            await self.task.queue_frame(frame)

    async def tell(self, frame: Frame) -> None:
        """Send ``frame`` and wait until the LLM service has passed it on."""
        await self.send(frame)
        await self.until(lambda: any(f is frame for f in self.down.frames), f"{frame} passed on")

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        for _ in range(int(WAIT / 0.01)):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"never happened: {what}")

    def text(self) -> str:
        return texts(self.down.frames)

    def of(
        self, kind: type[Frame], direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> list[Any]:
        frames = self.down.frames if direction is FrameDirection.DOWNSTREAM else self.up.frames
        return [f for f in frames if isinstance(f, kind)]


@asynccontextmanager
async def running(llm: OpenAILLMService) -> AsyncIterator[Call]:
    call = Call(llm)
    runner = asyncio.get_running_loop().create_task(call.task.run())
    try:
        yield call
    finally:
        await call.task.queue_frame(EndFrame())
        await asyncio.wait_for(runner, WAIT)


def user_turn(context: LLMContext, text: str) -> LLMContextFrame:
    """What the user aggregator does at the end of a turn: the words in, the LLM asked."""
    context.add_message({"role": "user", "content": text})
    return LLMContextFrame(context=context)


def payloads(context: LLMContext) -> list[AsyncToolMessagePayload]:
    found = []
    for message in context.messages:
        assert isinstance(message, dict)
        payload = parse_message(message)
        if payload is not None:
            found.append(payload)
    return found


def tool_message(context: LLMContext, call_id: str) -> dict[str, Any]:
    return next(
        m
        for m in context.messages
        if isinstance(m, dict) and m.get("role") == "tool" and m.get("tool_call_id") == call_id
    )


def system_of(request: dict[str, Any]) -> str:
    first = request["messages"][0]
    return str(first["content"]) if first["role"] == "system" else ""


def tool_names(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools", [])]


# ---------------------------------------------------------------------------- the protocol


def test_messages_round_trip_in_the_documented_shape() -> None:
    started = async_tool_messages.build_started_message("c1")
    assert started["role"] == "tool" and started["tool_call_id"] == "c1"
    body = json.loads(started["content"])
    assert body["type"] == "async_tool" and body["status"] == "running"
    assert body["tool_call_id"] == "c1" and body["description"] and "result" not in body

    progress = async_tool_messages.build_intermediate_result_message("c1", '{"done": 1}')
    final = async_tool_messages.build_final_result_message("c1", '"ok"')
    cancelled = async_tool_messages.build_cancelled_message("c1")
    assert {m["role"] for m in (progress, final, cancelled)} == {"developer"}
    assert "tool_call_id" not in final  # the id lives in the payload only

    parsed = [parse_message(m) for m in (started, progress, final, cancelled)]
    assert all(p is not None and p.tool_call_id == "c1" for p in parsed)
    kinds = [(p.kind, p.status) for p in parsed if p]
    assert kinds == [
        ("started", "running"),
        ("intermediate", "running"),
        ("final", "finished"),
        ("final", "finished"),
    ]
    results = [p.result for p in parsed if p]
    assert results[:3] == [None, '{"done": 1}', '"ok"']
    assert (results[3] or "").startswith("CANCELLED")
    descriptions = {p.description for p in parsed if p}
    assert len(descriptions) == 4 and "" not in descriptions  # each stage says its own
    # Anything else is not an async-tool message.
    assert parse_message({"role": "tool", "tool_call_id": "c1", "content": "booked"}) is None
    assert parse_message({"role": "user", "content": started["content"]}) is None
    assert parse_message({"role": "developer", "content": '{"type": "other"}'}) is None


def test_cancel_tool_schema_and_names() -> None:
    assert async_tool_cancellation.cancel_tool_name("book_table") == "cancel_book_table"
    schema = async_tool_cancellation.build_cancel_tool_schema("book_table")
    assert schema.name == "cancel_book_table" and schema.required == []
    assert list(schema.properties) == ["tool_call_id"]
    assert "book_table" in schema.description
    assert schema.handler is None


def test_the_summarizer_keeps_a_running_call_and_releases_a_finished_one() -> None:
    util = LLMContextSummarizationUtil
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    started = async_tool_messages.build_started_message("c1")
    final = async_tool_messages.build_final_result_message("c1", "COMPLETED")
    user = {"role": "user", "content": "x"}
    messages = [user, call, started, user, user]
    assert util.select_messages(messages, 1).last_summarized_index == 0  # stops before the call
    messages = [user, call, started, final, user, user]
    assert util.select_messages(messages, 1).last_summarized_index == 4


async def test_a_progress_report_leaves_the_idle_timer_held() -> None:
    async def idle() -> None:
        return None

    controller = UserIdleController(30.0, idle)
    calls = [FunctionCallFromLLM("f", "c1", {}, None)]
    report = FunctionCallResultProperties(is_final=False)
    controller.process_frame(FunctionCallsStartedFrame(function_calls=calls))
    controller.process_frame(FunctionCallResultFrame(tool_call_id="c1", properties=report))
    controller.process_frame(BotStoppedSpeakingFrame())
    assert not controller.waiting_for_user  # the call still runs
    controller.process_frame(FunctionCallResultFrame(tool_call_id="c1"))
    controller.process_frame(BotStoppedSpeakingFrame())
    assert controller.waiting_for_user
    controller.cancel()


# ---------------------------------------------------------------------------- the service


async def test_the_model_answers_the_next_turn_while_the_call_works(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(
        "Let me book that.", tool_calls=[{"name": "book_table", "arguments": {"guests": 2}}]
    )
    server.add_chat_reply("No rain today.")
    server.add_chat_reply("Your table for two is booked.")
    llm = make_llm(server)
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[bool] = []

    async def book_table(params: FunctionCallParams) -> dict[str, bool]:
        started.set()
        await release.wait()
        finished.append(True)
        return {"booked": True}

    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "a table for two"}], tools=[BOOK])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(started.is_set, "the handler started")
        # The call is in the context at once, answered by a "started" message.
        await call.until(lambda: len(context.messages) == 3, "the call is in the context")
        assert context.messages[1]["tool_calls"][0]["id"] == "call_fake_0"  # type: ignore[index]
        assert [(p.kind, p.tool_call_id) for p in payloads(context)] == [("started", "call_fake_0")]
        assert call.text() == "Let me book that."
        # The caller barges in and asks something else: answered while the call still works.
        await call.send(InterruptionFrame(), user_turn(context, "Will it rain?"))
        await call.until(lambda: "No rain today." in call.text(), "the next turn answered")
        assert not finished
        sent = server.chat_requests[1]["messages"]
        assert sent[-2]["role"] == "tool" and '"status": "running"' in sent[-2]["content"]
        # The outcome comes after the conversation moved on: a final message, and the model
        # runs again to pass it on.
        release.set()
        await call.until(lambda: "is booked" in call.text(), "the outcome spoken")
    assert call.text() == "Let me book that.No rain today.Your table for two is booked."
    assert [(p.kind, p.result) for p in payloads(context)] == [
        ("started", None),
        ("final", '{"booked": true}'),
    ]
    assert server.chat_requests[2]["messages"][-1]["role"] == "developer"
    assert len(server.chat_requests) == 3
    # The async-tool instructions are in the system instruction.
    assert system_of(server.chat_requests[0]) == ASYNC_TOOL_INSTRUCTIONS
    # The frames: the call is asynchronous (not cancelled by the interruption), its result
    # (as the handler gave it, as in 1.14) goes both ways.
    in_progress = call.of(FunctionCallInProgressFrame)
    assert [(f.cancel_on_interruption, f.group_id is not None) for f in in_progress] == [
        (False, True)
    ]
    assert not call.of(FunctionCallCancelFrame)
    for direction in FrameDirection:
        results = call.of(FunctionCallResultFrame, direction)
        assert [(r.tool_call_id, r.result) for r in results] == [("call_fake_0", {"booked": True})]


async def test_a_fast_result_replaces_the_started_message(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(tool_calls=[{"name": "book_table", "arguments": {"guests": 4}}])
    server.add_chat_reply("Booked for four.")
    llm = make_llm(server)
    seen_in_context: list[str] = []
    seen_while_running: list[AsyncToolMessagePayload | None] = []
    context = LLMContext([{"role": "user", "content": "table for four"}], tools=[BOOK])

    async def updated() -> None:
        seen_in_context.append(tool_message(context, "call_fake_0")["content"])

    async def book_table(params: FunctionCallParams) -> None:
        # While the handler runs, its call is already answered by a started message.
        seen_while_running.append(parse_message(tool_message(context, params.tool_call_id)))
        properties = FunctionCallResultProperties(on_context_updated=updated)
        await params.result_callback({"table": 7}, properties=properties)

    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: "Booked for four." in call.text(), "the answer")
        await call.until(lambda: bool(seen_in_context), "on_context_updated")
    # Nothing moved before the result came: it settles in place, like a synchronous call's.
    assert tool_message(context, "call_fake_0")["content"] == '{"table": 7}'
    assert payloads(context) == []
    assert [m.get("role") for m in context.messages] == ["user", "assistant", "tool"]  # type: ignore[union-attr]
    assert [p.kind if p else None for p in seen_while_running] == ["started"]
    assert seen_in_context == ['{"table": 7}']
    assert server.chat_requests[1]["messages"][-1]["content"] == '{"table": 7}'
    assert len(server.chat_requests) == 2


async def test_progress_reports_go_into_the_context(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(tool_calls=[{"name": "book_table", "arguments": {"guests": 2}}])
    server.add_chat_reply("Still looking for a table.")
    server.add_chat_reply("Found one at eight.")
    llm = make_llm(server)
    report = asyncio.Event()
    release = asyncio.Event()

    async def book_table(params: FunctionCallParams) -> str:
        quiet = FunctionCallResultProperties(is_final=False, run_llm=False)
        await params.result_callback({"checked": 1}, properties=quiet)
        await report.wait()
        await params.result_callback(
            "checked 3 places", properties=FunctionCallResultProperties(is_final=False)
        )
        await release.wait()
        return "eight o'clock"

    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "table"}], tools=[BOOK])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: len(payloads(context)) == 2, "the first report")
        await asyncio.sleep(0.1)
        assert len(server.chat_requests) == 1  # run_llm=False: the model stays quiet
        report.set()
        await call.until(lambda: "Still looking" in call.text(), "the model on the report")
        release.set()
        await call.until(lambda: "Found one" in call.text(), "the outcome spoken")
    assert [(p.kind, p.result) for p in payloads(context)] == [
        ("started", None),
        ("intermediate", '{"checked": 1}'),
        # A text result is written as JSON, as 1.14 does.
        ("intermediate", '"checked 3 places"'),
        # Its own reports moved the conversation on: the outcome is a message of its own.
        ("final", '"eight o\'clock"'),
    ]
    finals = [
        r.properties is None or r.properties.is_final for r in call.of(FunctionCallResultFrame)
    ]
    assert finals == [False, False, True]
    assert len(server.chat_requests) == 3


async def test_a_progress_report_from_a_synchronous_call_is_ignored(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    server.add_chat_reply("Sunny.")
    llm = make_llm(server)

    async def get_weather(params: FunctionCallParams) -> str:
        await params.result_callback(
            "halfway", properties=FunctionCallResultProperties(is_final=False)
        )
        return "sunny"

    llm.register_function("get_weather", get_weather)
    context = LLMContext([{"role": "user", "content": "weather?"}], tools=[WEATHER])
    with caplog.at_level(logging.WARNING, logger="callpipe.services.llm_service"):
        async with running(llm) as call:
            await call.send(LLMContextFrame(context=context))
            await call.until(lambda: "Sunny." in call.text(), "the answer")
    assert any("is_final=False" in r.getMessage() for r in caplog.records)
    assert tool_message(context, "call_fake_0")["content"] == "sunny"
    assert payloads(context) == []
    assert [r.result for r in call.of(FunctionCallResultFrame)] == ["sunny"]
    # No async tool is registered: the system instruction is left alone.
    assert system_of(server.chat_requests[0]) == ""


async def test_a_synchronous_call_in_the_same_response_is_waited_for_alone(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Rome"}},
            {"name": "book_table", "arguments": {"guests": 2}},
        ]
    )
    server.add_chat_reply("Sunny, and your table is booked.")
    llm = make_llm(server)
    release = asyncio.Event()

    async def get_weather(params: FunctionCallParams) -> str:
        return "sunny"

    async def book_table(params: FunctionCallParams) -> str:
        await release.wait()
        return "booked"

    llm.register_function("get_weather", get_weather)
    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER, BOOK])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: bool(call.of(FunctionCallResultFrame)), "the weather result")
        assert tool_message(context, "call_fake_0")["content"] == "sunny"
        assert parse_message(tool_message(context, "call_fake_1")) is not None  # started
        await asyncio.sleep(0.1)
        # The model runs once the response's last call has ended, not before.
        assert len(server.chat_requests) == 1
        release.set()
        await call.until(lambda: "table is booked" in call.text(), "the answer")
    assert tool_message(context, "call_fake_1")["content"] == '"booked"'  # settled in place
    # The synchronous result as callpipe writes it, the asynchronous one as JSON (as 1.14).
    assert [m["content"] for m in server.chat_requests[1]["messages"] if m["role"] == "tool"] == [
        "sunny",
        '"booked"',
    ]
    assert len(server.chat_requests) == 2


async def test_an_interruption_cancels_only_the_synchronous_calls(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Rome"}},
            {"name": "book_table", "arguments": {"guests": 2}},
        ]
    )
    server.add_chat_reply("Your table is booked.")
    llm = make_llm(server)
    weather_started = asyncio.Event()
    weather_stopped = asyncio.Event()
    release = asyncio.Event()

    async def get_weather(params: FunctionCallParams) -> str:
        weather_started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            weather_stopped.set()
            raise
        return "sunny"

    async def book_table(params: FunctionCallParams) -> str:
        await release.wait()
        return "booked"

    llm.register_function("get_weather", get_weather)
    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER, BOOK])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(weather_started.is_set, "the weather call started")
        await call.send(InterruptionFrame())
        await call.until(weather_stopped.is_set, "the weather call cancelled")
        assert "cancelled" in tool_message(context, "call_fake_0")["content"]
        release.set()
        await call.until(lambda: "booked" in call.text(), "the outcome spoken")
    assert [f.tool_call_id for f in call.of(FunctionCallCancelFrame)] == ["call_fake_0"]
    assert tool_message(context, "call_fake_1")["content"] == '"booked"'
    assert [r.tool_call_id for r in call.of(FunctionCallResultFrame)] == ["call_fake_1"]
    assert len(server.chat_requests) == 2


async def test_the_run_for_an_outcome_waits_while_someone_speaks(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(tool_calls=[{"name": "book_table", "arguments": {"guests": 2}}])
    server.add_chat_reply("It is booked.")
    server.add_chat_reply(tool_calls=[{"name": "book_table", "arguments": {"guests": 3}}])
    server.add_chat_reply("Sure, and the second table is booked too.")
    llm = make_llm(server)
    release = [asyncio.Event(), asyncio.Event()]
    calls = 0

    async def book_table(params: FunctionCallParams) -> str:
        nonlocal calls
        gate = release[calls]
        calls += 1
        await gate.wait()
        return "booked"

    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "table"}], tools=[BOOK])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: calls == 1, "the call started")
        # The bot is speaking when the outcome comes: the run waits for it to stop.
        await call.tell(BotStartedSpeakingFrame())
        release[0].set()
        await call.until(lambda: bool(call.of(FunctionCallResultFrame)), "the outcome")
        await asyncio.sleep(0.1)
        assert len(server.chat_requests) == 1
        await call.tell(BotStoppedSpeakingFrame())
        await call.until(lambda: "It is booked." in call.text(), "the outcome spoken")
        # A second call; the caller is speaking when its outcome comes: their turn's run
        # carries it, and no other run is made for it.
        await call.send(user_turn(context, "another one"))
        await call.until(lambda: calls == 2, "the second call started")
        await call.tell(UserStartedSpeakingFrame())
        release[1].set()
        await call.until(lambda: len(call.of(FunctionCallResultFrame)) == 2, "second outcome")
        await call.tell(UserStoppedSpeakingFrame())
        await asyncio.sleep(0.1)
        assert len(server.chat_requests) == 3
        await call.send(user_turn(context, "thanks"))
        await call.until(lambda: "too" in call.text(), "the turn answered")
        await asyncio.sleep(0.1)
    assert len(server.chat_requests) == 4
    last = server.chat_requests[3]["messages"]
    # Nothing was written between the call and its outcome: it settled in place.
    assert last[-2] == {"role": "tool", "tool_call_id": "call_fake_1", "content": '"booked"'}
    assert last[-1] == {"role": "user", "content": "thanks"}


async def test_the_model_cancels_a_running_call_with_its_cancel_tool(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "book_table", "arguments": {"guests": 2}},
            {"name": "book_table", "arguments": {"guests": 6}},
        ]
    )
    server.add_chat_reply(tool_calls=[{"name": "cancel_book_table", "arguments": {}}])
    server.add_chat_reply(
        tool_calls=[{"name": "cancel_book_table", "arguments": {"tool_call_id": "call_fake_1"}}]
    )
    server.add_chat_reply("I dropped the booking for six.")
    llm = make_llm(server)
    stopped: list[int] = []
    release = asyncio.Event()

    async def book_table(params: FunctionCallParams) -> str:
        try:
            await release.wait()
        except asyncio.CancelledError:
            stopped.append(params.arguments["guests"])
            raise
        return "booked"

    async def get_weather(params: FunctionCallParams) -> str:
        return "sunny"

    llm.register_function(
        "book_table", book_table, cancel_on_interruption=False, cancellable_by_llm=True
    )
    llm.register_function("get_weather", get_weather, cancel_on_interruption=False)
    started: list[list[str]] = []
    cancelled: list[str] = []
    llm.add_event_handler(
        "on_function_calls_started", lambda s, c: started.append([f.function_name for f in c])
    )
    llm.add_event_handler(
        "on_function_calls_cancelled", lambda s, c: cancelled.extend(f.tool_call_id for f in c)
    )
    context = LLMContext([{"role": "user", "content": "two tables"}], tools=[BOOK, WEATHER])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: len(payloads(context)) == 2, "both calls started")
        await call.send(user_turn(context, "drop the one for six"))
        await call.until(lambda: "dropped" in call.text(), "the answer")
        assert stopped == [6]  # the other call goes on
    # Offered while the function is registered (only for the one that opted in), with its
    # instructions, and never part of the context's own tools.
    assert tool_names(server.chat_requests[0]) == ["book_table", "get_weather", "cancel_book_table"]
    system = system_of(server.chat_requests[0])
    assert ASYNC_TOOL_CANCELLATION_INSTRUCTIONS in system and ASYNC_TOOL_INSTRUCTIONS in system
    assert [t.name for t in context.function_schemas()] == ["book_table", "get_weather"]
    # Without an id and two calls running, the tool asks which one (and lists them).
    refusal = json.loads(tool_message(context, "call_fake_2")["content"])
    assert refusal["cancelled"] is None
    assert [r["tool_call_id"] for r in refusal["running"]] == ["call_fake_0", "call_fake_1"]
    answer = json.loads(tool_message(context, "call_fake_3")["content"])
    assert answer == {"cancelled": "call_fake_1", "function_name": "book_table"}
    # The cancelled call ends with a cancellation message; frames and event say so.
    ends = [(p.tool_call_id, p.result) for p in payloads(context) if p.kind == "final"]
    assert ends[0][0] == "call_fake_1" and (ends[0][1] or "").startswith("CANCELLED")
    assert [(f.tool_call_id, f.run_llm) for f in call.of(FunctionCallCancelFrame)] == [
        ("call_fake_1", False)
    ]
    assert cancelled == ["call_fake_1"]
    # The cancel tool is internal: left out of on_function_calls_started.
    assert started == [["book_table", "book_table"]]
    assert len(server.chat_requests) == 4


async def test_a_timed_out_call_is_cancelled_and_the_model_told(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(tool_calls=[{"name": "book_table", "arguments": {"guests": 2}}])
    server.add_chat_reply("Sorry, the booking did not go through.")
    llm = make_llm(server)
    stopped = asyncio.Event()

    async def book_table(params: FunctionCallParams) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "booked"

    llm.register_function("book_table", book_table, cancel_on_interruption=False, timeout_secs=0.1)
    cancelled: list[str] = []
    llm.add_event_handler(
        "on_function_calls_cancelled", lambda s, c: cancelled.extend(f.tool_call_id for f in c)
    )
    context = LLMContext([{"role": "user", "content": "table"}], tools=[BOOK])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: "did not go through" in call.text(), "the model told")
    assert stopped.is_set()
    assert cancelled == ["call_fake_0"]
    # A cancellation always gets its own final message, even when nothing moved.
    assert [(p.kind, p.status) for p in payloads(context)] == [
        ("started", "running"),
        ("final", "finished"),
    ]
    assert [(f.tool_call_id, f.run_llm) for f in call.of(FunctionCallCancelFrame)] == [
        ("call_fake_0", True)
    ]
    assert not call.of(FunctionCallResultFrame)
    assert len(server.chat_requests) == 2


async def test_deprecated_enable_async_tool_cancellation_covers_every_async_tool(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply("Hello.")
    with pytest.warns(DeprecationWarning):
        llm = make_llm(server, enable_async_tool_cancellation=True)

    async def handler(params: FunctionCallParams) -> None:
        return None

    llm.register_function("book_table", handler, cancel_on_interruption=False)
    llm.register_function("get_weather", handler)
    context = LLMContext([{"role": "user", "content": "hi"}], tools=[BOOK, WEATHER])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: call.text() == "Hello.", "the answer")
    assert tool_names(server.chat_requests[0]) == ["book_table", "get_weather", "cancel_book_table"]


async def test_the_instructions_follow_the_base_instruction_and_the_registrations(
    server: FakeOpenAIServer,
) -> None:
    for _ in range(4):
        server.add_chat_reply("● Hi.")
    settings = OpenAILLMService.Settings(system_instruction="Be brief.")
    llm = make_llm(server, settings=settings)

    async def handler(params: FunctionCallParams) -> None:
        return None

    llm.register_function("book_table", handler, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "hi"}], tools=[BOOK])
    completion = UserTurnCompletionConfig()
    async with running(llm) as call:

        async def turn(*before: Frame) -> None:
            count = len(server.chat_requests)
            await call.send(*before, LLMContextFrame(context=context))
            await call.until(lambda: len(server.chat_requests) > count, "a request")
            await call.until(lambda: call.text().count("Hi.") > count, "its answer")

        await turn()
        await turn(LLMUpdateSettingsFrame(settings={"system_instruction": "Be kind."}))
        await turn(
            LLMUpdateSettingsFrame(
                settings={
                    "filter_incomplete_user_turns": True,
                    "user_turn_completion_config": completion,
                }
            )
        )
        llm.unregister_function("book_table")
        await turn()
    systems = [system_of(r) for r in server.chat_requests]
    assert systems == [
        "Be brief.\n\n" + ASYNC_TOOL_INSTRUCTIONS,
        "Be kind.\n\n" + ASYNC_TOOL_INSTRUCTIONS,
        "Be kind.\n\n" + completion.completion_instructions + "\n\n" + ASYNC_TOOL_INSTRUCTIONS,
        "Be kind.\n\n" + completion.completion_instructions,
    ]


async def test_a_provider_without_developer_messages_gets_user_messages(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(tool_calls=[{"name": "book_table", "arguments": {"guests": 2}}])
    server.add_chat_reply("Still looking.")
    llm = make_llm(server)
    llm.supports_developer_role = False  # as DeepSeek, Mistral, Together... declare
    release = asyncio.Event()

    async def book_table(params: FunctionCallParams) -> None:
        report = FunctionCallResultProperties(is_final=False)
        await params.result_callback("checked 2 places", properties=report)
        await release.wait()

    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "table"}], tools=[BOOK])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: "Still looking." in call.text(), "the report answered")
    sent = server.chat_requests[1]["messages"][-1]
    assert sent["role"] == "user" and json.loads(sent["content"])["type"] == "async_tool"
    assert context.messages[-1]["role"] == "developer"  # type: ignore[index]
    assert all(m["role"] != "developer" for m in server.chat_requests[1]["messages"])


# ------------------------------------------------------- results, cancel_function_calls, reports


async def test_an_empty_outcome_runs_no_model(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(
        "One moment.",
        tool_calls=[
            {"name": "book_table", "arguments": {"guests": 2}},
            {"name": "get_weather", "arguments": {"city": "Rome"}},
        ],
    )
    llm = make_llm(server)

    async def book_table(params: FunctionCallParams) -> None:
        # 1.14 runs the model on a result only when there is one, whatever run_llm says.
        await params.result_callback(None, properties=FunctionCallResultProperties(run_llm=True))

    async def get_weather(params: FunctionCallParams) -> dict[str, Any]:
        return {}

    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    llm.register_function("get_weather", get_weather, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "table"}], tools=[BOOK, WEATHER])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: len(call.of(FunctionCallResultFrame)) == 2, "both outcomes")
        await asyncio.sleep(0.2)
    assert len(server.chat_requests) == 1
    assert tool_message(context, "call_fake_0")["content"] == "COMPLETED"
    assert tool_message(context, "call_fake_1")["content"] == "COMPLETED"


async def test_a_result_that_asks_for_no_run_starts_the_one_already_owed(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "book_table", "arguments": {"guests": 2}},
            {"name": "get_weather", "arguments": {"city": "Rome"}},
        ]
    )
    server.add_chat_reply("Booked, and it is sunny.")
    llm = make_llm(server)
    release = {"book_table": asyncio.Event(), "get_weather": asyncio.Event()}
    running_calls: list[str] = []

    async def book_table(params: FunctionCallParams) -> None:
        running_calls.append(params.function_name)
        await release["book_table"].wait()
        await params.result_callback(
            "booked", properties=FunctionCallResultProperties(run_llm=True)
        )

    async def get_weather(params: FunctionCallParams) -> None:
        running_calls.append(params.function_name)
        await release["get_weather"].wait()
        quiet = FunctionCallResultProperties(run_llm=False)
        await params.result_callback("sunny", properties=quiet)

    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    llm.register_function("get_weather", get_weather, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "?"}], tools=[BOOK, WEATHER])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: len(running_calls) == 2, "both calls running")
        # The booking ends while the caller speaks: its run is owed, and their turn brings none.
        await call.tell(UserStartedSpeakingFrame())
        release["book_table"].set()
        await call.until(lambda: bool(call.of(FunctionCallResultFrame)), "the booking")
        await call.tell(UserStoppedSpeakingFrame())
        await asyncio.sleep(0.1)
        assert len(server.chat_requests) == 1
        # The next result asks for no run of its own but makes the owed one (as in 1.14).
        release["get_weather"].set()
        await call.until(lambda: "sunny" in call.text(), "the owed run")
    assert len(server.chat_requests) == 2
    sent = [m["content"] for m in server.chat_requests[1]["messages"] if m["role"] == "tool"]
    assert sent == ['"booked"', '"sunny"']


async def test_an_outcome_that_misses_the_request_gets_a_run_after_it(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply("Let me book that.", tool_calls=[{"name": "book_table", "arguments": {}}])
    server.add_chat_reply("No rain today.", first_chunk_delay=0.3)
    server.add_chat_reply("Your table at Café Noir is booked.")
    llm = make_llm(server)
    started = asyncio.Event()
    release = asyncio.Event()

    async def book_table(params: FunctionCallParams) -> str:
        started.set()
        await release.wait()
        return "Café Noir"

    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "a table"}], tools=[BOOK])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(started.is_set, "the call started")
        await call.send(user_turn(context, "Will it rain?"))
        # The outcome comes while the next turn's request is out without it: that request does
        # not settle the owed run, one more run follows it.
        await call.until(lambda: len(server.chat_requests) == 2, "the next turn's request")
        release.set()
        await call.until(lambda: "is booked" in call.text(), "the outcome spoken")
        await asyncio.sleep(0.1)
    assert call.text() == "Let me book that.No rain today.Your table at Café Noir is booked."
    assert len(server.chat_requests) == 3
    assert all(
        parse_message(m) is None or m["role"] == "tool" for m in server.chat_requests[1]["messages"]
    )
    final = server.chat_requests[2]["messages"][-1]
    payload = parse_message(final)
    assert payload is not None and payload.kind == "final"
    assert payload.result == '"Café Noir"'  # JSON, with its non-ASCII letters kept (as 1.14)


async def test_cancel_function_calls_stops_every_call_and_runs_no_inference(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Rome"}},
            {"name": "book_table", "arguments": {"guests": 2}},
        ]
    )
    llm = make_llm(server)
    started: list[str] = []
    stopped: list[str] = []

    async def get_weather(params: FunctionCallParams) -> str:
        started.append(params.function_name)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.append(params.function_name)
            raise
        return "sunny"

    async def book_table(params: FunctionCallParams) -> str:
        started.append(params.function_name)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.append(params.function_name)
            # Reported while unwinding: refused, the call has ended.
            await params.result_callback("booked anyway")
            raise
        return "booked"

    llm.register_function("get_weather", get_weather)
    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    events: list[list[str]] = []
    llm.add_event_handler(
        "on_function_calls_cancelled", lambda s, c: events.append([f.tool_call_id for f in c])
    )
    context = LLMContext([{"role": "user", "content": "?"}], tools=[WEATHER, BOOK])
    async with running(llm) as call:
        await call.send(LLMContextFrame(context=context))
        await call.until(lambda: len(started) == 2, "both calls running")
        cancelled = await llm.cancel_function_calls(reason="the caller hung up")
        assert sorted(stopped) == ["book_table", "get_weather"]
        assert sorted((f.function_name, f.tool_call_id) for f in cancelled) == [
            ("book_table", "call_fake_1"),
            ("get_weather", "call_fake_0"),
        ]
        assert all(f.context is context for f in cancelled)
        await call.until(
            lambda: tool_message(context, "call_fake_0")["content"] != "IN_PROGRESS",
            "the synchronous call settled",
        )
        await call.until(lambda: bool(events), "on_function_calls_cancelled")
        assert await llm.cancel_function_calls() == []  # nothing is left in flight
        await asyncio.sleep(0.1)
    assert len(server.chat_requests) == 1  # no inference for the cancellations
    assert json.loads(tool_message(context, "call_fake_0")["content"]) == {"error": "cancelled"}
    ends = [(p.kind, p.tool_call_id, p.result or "") for p in payloads(context)]
    assert [(kind, call_id) for kind, call_id, _ in ends] == [
        ("started", "call_fake_1"),
        ("final", "call_fake_1"),
    ]
    assert ends[1][2].startswith("CANCELLED")
    assert "booked anyway" not in json.dumps(context.messages)
    for direction in FrameDirection:
        frames = call.of(FunctionCallCancelFrame, direction)
        assert sorted((f.tool_call_id, f.run_llm) for f in frames) == [
            ("call_fake_0", False),
            ("call_fake_1", False),
        ]
        assert not call.of(FunctionCallResultFrame, direction)
    assert len(events) == 1 and sorted(events[0]) == ["call_fake_0", "call_fake_1"]


class _NoProgressLLM(OpenAILLMService):
    """A text LLM service that says it takes no intermediate results."""

    @property
    def accepts_intermediate_function_call_results(self) -> bool:
        return False


async def test_a_service_that_takes_no_intermediate_results_drops_them(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.add_chat_reply(tool_calls=[{"name": "book_table", "arguments": {"guests": 2}}])
    server.add_chat_reply("Booked at eight.")
    llm = _NoProgressLLM(api_key="test-key", base_url=server.base_url, model="fake-model")
    assert make_llm(server).accepts_intermediate_function_call_results  # a text LLM takes them
    assert not llm.accepts_intermediate_function_call_results
    reported = asyncio.Event()
    release = asyncio.Event()

    async def book_table(params: FunctionCallParams) -> str:
        report = FunctionCallResultProperties(is_final=False)
        await params.result_callback("checked 2 places", properties=report)
        reported.set()
        await release.wait()
        return "eight o'clock"

    llm.register_function("book_table", book_table, cancel_on_interruption=False)
    context = LLMContext([{"role": "user", "content": "table"}], tools=[BOOK])
    with caplog.at_level(logging.WARNING, logger="callpipe.services.llm_service"):
        async with running(llm) as call:
            await call.send(LLMContextFrame(context=context))
            await call.until(reported.is_set, "the report")
            await asyncio.sleep(0.1)
            assert len(server.chat_requests) == 1  # no run for it
            assert [p.kind for p in payloads(context)] == ["started"]
            release.set()
            await call.until(lambda: "Booked at eight." in call.text(), "the outcome spoken")
    assert any("dropping the intermediate result" in r.getMessage() for r in caplog.records)
    # Nothing was written in between: the outcome settles in place.
    assert tool_message(context, "call_fake_0")["content"] == '"eight o\'clock"'
    # The report still goes out as a frame, as in 1.14 (observers see the call's progress).
    finals = [
        (r.result, r.properties is None or r.properties.is_final)
        for r in call.of(FunctionCallResultFrame)
    ]
    assert finals == [("checked 2 places", False), ("eight o'clock", True)]
    assert len(server.chat_requests) == 2


async def test_speech_to_speech_services_drop_progress_reports(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Their model waits for each call and takes its one result: no way for a report to it.
    services = [
        OpenAIRealtimeLLMService(api_key="k"),
        GeminiLiveLLMService(api_key="k"),
        UltravoxRealtimeLLMService(params=JoinUrlInputParams(join_url="wss://example.invalid")),
    ]
    assert [s.accepts_intermediate_function_call_results for s in services] == [False] * 3
    async with FakeOpenAIRealtimeServer() as fake:
        fake.replies += [
            RealtimeReply(function_call=("book_table", {"guests": 2})),
            RealtimeReply("Booked."),
        ]
        llm = OpenAIRealtimeLLMService(api_key="test-key", base_url=fake.base_url)

        async def book_table(params: FunctionCallParams) -> str:
            report = FunctionCallResultProperties(is_final=False)
            await params.result_callback("halfway", properties=report)
            return "booked"

        llm.register_function("book_table", book_table, cancel_on_interruption=False)

        def both_responses_done() -> bool:
            return len([e for e in fake.sent if e["type"] == "response.done"]) >= 2

        frames = [
            LLMContextFrame(LLMContext(tools=[BOOK])),
            SleepFrame(WAIT, until=both_responses_done),
        ]
        with caplog.at_level(logging.WARNING, logger="callpipe.services.llm_service"):
            down, _ = await run_test(llm, frames, params=PHONE)
        outputs = [e["item"]["output"] for e in fake.of_type("conversation.item.create")]
    assert outputs == ["booked"]  # the one result, never the report
    assert any("dropping the intermediate result" in r.getMessage() for r in caplog.records)
    reports = [
        f.result
        for f in down
        if isinstance(f, FunctionCallResultFrame) and f.properties and not f.properties.is_final
    ]
    assert reports == ["halfway"]


# ---------------------------------------------------------------------------- the older API


async def test_the_older_api_still_waits_for_the_call(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(tool_calls=[{"name": "book_table", "arguments": {"guests": 2}}])
    server.add_chat_reply("Booked.")
    server.add_chat_reply("Anything else?")
    llm = make_llm(server)
    started = asyncio.Event()
    release = asyncio.Event()

    async def book_table(params: FunctionCallParams) -> str:
        started.set()
        await release.wait()
        return "booked"

    llm.register_function(
        "book_table", book_table, cancel_on_interruption=False, cancellable_by_llm=True
    )
    context = OpenAILLMContext([{"role": "user", "content": "table"}], tools=ToolsSchema([BOOK]))
    async with running(llm) as call:
        await call.send(OpenAILLMContextFrame(context=context))
        await call.until(started.is_set, "the handler started")
        await call.send(OpenAILLMContextFrame(context=context))
        await asyncio.sleep(0.2)
        # The model waits for the call: the second run has not started, nothing is written.
        assert len(server.chat_requests) == 1
        assert [m["role"] for m in context.messages] == ["user"]
        release.set()
        await call.until(lambda: "Anything else?" in call.text(), "both runs")
    assert call.text() == "Booked.Anything else?"
    assert [m["role"] for m in context.messages] == ["user", "assistant", "tool"]
    assert context.messages[-1]["content"] == "booked"
    for request in server.chat_requests:
        assert system_of(request) == ""  # no async-tool instructions
        assert tool_names(request) == ["book_table"]  # no cancel tool
        assert all(parse_message(m) is None for m in request["messages"])
    assert [f.cancel_on_interruption for f in call.of(FunctionCallInProgressFrame)] == [False]
    assert len(server.chat_requests) == 3
