"""``FunctionCallResultProperties.on_context_updated`` runs in its own task (Pipecat 1.14).

A callback that waits on the pipeline (here: a frame that has to pass through the LLM service
and reach a processor after it) must not hold up the service's frame handling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.frames.frames import (
    DataFrame,
    Frame,
    FunctionCallResultProperties,
    LLMContextFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame

SAVE = FunctionSchema(name="save", description="Save", properties={}, required=[])


class Marker(DataFrame):
    pass


class Probe(FrameProcessor):
    """Sets ``seen`` when a Marker gets past the LLM service."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, Marker):
            self.seen.set()
        await self.push_frame(frame, direction)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        fake.add_chat_reply(tool_calls=[{"name": "save", "arguments": {}}])
        yield fake


def setup(
    server: FakeOpenAIServer, callback: Any
) -> tuple[OpenAILLMService, LLMContext, asyncio.Event]:
    llm = OpenAILLMService(api_key="test-key", base_url=server.base_url, model="m")
    done = asyncio.Event()

    async def save(params: FunctionCallParams) -> None:
        properties = FunctionCallResultProperties(run_llm=False, on_context_updated=callback)
        await params.result_callback("saved", properties=properties)

    llm.register_function("save", save)
    context = LLMContext([{"role": "user", "content": "save it"}], tools=[SAVE])
    return llm, context, done


async def test_a_callback_waiting_on_the_pipeline_does_not_deadlock(
    server: FakeOpenAIServer,
) -> None:
    probe = Probe()
    seen_in_context: list[Any] = []

    async def on_context_updated() -> None:
        seen_in_context.append(context.messages[-1])
        await llm.queue_frame(Marker())  # handled by the LLM service's own frame loop
        await probe.seen.wait()
        done.set()

    llm, context, done = setup(server, on_context_updated)
    frames = [LLMContextFrame(context=context), SleepFrame(3.0, until=done.is_set)]
    # Bounded only so that a deadlock fails the test instead of hanging it.
    async with asyncio.timeout(10):
        await run_test(Pipeline([llm, probe]), frames)
    assert done.is_set()
    assert seen_in_context == [{"role": "tool", "tool_call_id": "call_fake_0", "content": "saved"}]


async def test_a_failing_callback_is_logged(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def on_context_updated() -> None:
        done.set()
        raise RuntimeError("callback broke")

    llm, context, done = setup(server, on_context_updated)
    frames = [LLMContextFrame(context=context), SleepFrame(3.0, until=done.is_set)]
    with caplog.at_level(logging.ERROR):
        await run_test(llm, frames)
    failed = [r for r in caplog.records if r.exc_info and "callback broke" in str(r.exc_info[1])]
    assert failed and "on_context_updated" in failed[0].getMessage()


async def test_a_callback_still_waiting_is_cancelled_when_the_call_ends(
    server: FakeOpenAIServer,
) -> None:
    cancelled = asyncio.Event()

    async def on_context_updated() -> None:
        done.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    llm, context, done = setup(server, on_context_updated)
    frames = [LLMContextFrame(context=context), SleepFrame(3.0, until=done.is_set)]
    async with asyncio.timeout(10):
        await run_test(llm, frames)
    assert done.is_set() and cancelled.is_set()
