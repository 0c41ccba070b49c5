"""The bot the flow tests run: user aggregator → OpenAI LLM (fake server) → a recorder in the
TTS's place → assistant aggregator, with a FlowManager on its worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from callpipe.flows import FlowManager
from callpipe.frames.frames import EndFrame, Frame, LLMFullResponseEndFrame, TTSSpeakFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing.fakes.openai import FakeOpenAIServer

WAIT_SECS = 5.0


class TTSRecorder(FrameProcessor):
    """Stands where the TTS goes: notes what it was asked to say (into a shared log)."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSSpeakFrame):
            self.log.append(f"say:{frame.text}")
        elif isinstance(frame, LLMFullResponseEndFrame):
            self.log.append("reply")
        await self.push_frame(frame, direction)


@dataclass
class Bot:
    server: FakeOpenAIServer
    task: PipelineTask
    flow: FlowManager
    context: LLMContext
    log: list[str]
    running: asyncio.Task[None]

    def request(self, index: int) -> dict[str, Any]:
        return self.server.chat_requests[index]

    def tool_names(self, index: int) -> list[str]:
        return [t["function"]["name"] for t in self.request(index).get("tools", [])]

    def contents(self, index: int) -> list[str]:
        return [str(m.get("content")) for m in self.request(index)["messages"]]

    async def until(self, condition: Callable[[], bool]) -> None:
        for _ in range(int(WAIT_SECS / 0.01)):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("timed out waiting")

    async def requests(self, count: int) -> None:
        await self.until(lambda: len(self.server.chat_requests) >= count)
        await self.until(lambda: self.server.completed_streams >= count)

    async def end(self) -> None:
        if not self.running.done():
            await self.task.queue_frame(EndFrame())
        await asyncio.wait_for(self.running, WAIT_SECS)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
async def start(server: FakeOpenAIServer) -> AsyncIterator[Callable[..., Bot]]:
    bots: list[Bot] = []

    def make(**flow_kwargs: Any) -> Bot:
        llm = OpenAILLMService(api_key="test-key", base_url=server.base_url, model="fake-model")
        context = LLMContext()
        pair = LLMContextAggregatorPair(context)
        log: list[str] = []
        pipeline = Pipeline([pair.user(), llm, TTSRecorder(log), pair.assistant()])
        task = PipelineTask(pipeline, idle_timeout_secs=None)
        flow = FlowManager(worker=task, llm=llm, context_aggregator=pair, **flow_kwargs)
        running = asyncio.get_running_loop().create_task(task.run())
        bot = Bot(server, task, flow, context, log, running)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        if not bot.running.done():
            await bot.task.cancel()
            await asyncio.wait_for(bot.running, WAIT_SECS)
