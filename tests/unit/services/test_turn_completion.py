"""filter_incomplete_user_turns in the LLM service: the reply's leading marker decides what is
spoken, an incomplete turn is nudged after its timeout (FakeOpenAIServer on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMMarkerFrame,
    LLMUpdateSettingsFrame,
    UserStartedSpeakingFrame,
    UserTurnInferenceCompletedFrame,
    VADUserStartedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMAssistantAggregator
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.turns.user_turn_completion_mixin import UserTurnCompletionConfig

from .helpers import openai_llm as make_llm
from .helpers import texts

FAST = UserTurnCompletionConfig(incomplete_short_timeout=0.05, incomplete_long_timeout=0.1)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


def enable(config: UserTurnCompletionConfig = FAST, on: bool = True) -> LLMUpdateSettingsFrame:
    settings: dict[str, Any] = {"filter_incomplete_user_turns": on}
    if on:
        settings["user_turn_completion_config"] = config
    return LLMUpdateSettingsFrame(settings=settings)


def caller_said(text: str) -> tuple[LLMContext, LLMContextFrame]:
    context = LLMContext([{"role": "user", "content": text}])
    return context, LLMContextFrame(context=context)


def count(frames: list[Frame], cls: type[Frame]) -> int:
    return sum(isinstance(f, cls) for f in frames)


def system_of(request: dict[str, Any]) -> str:
    first = request["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


async def test_a_complete_reply_is_spoken_without_its_marker(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("● Sure, a table for two.")
    context, run = caller_said("a table for two please")
    llm = make_llm(server)
    down, up = await run_test(Pipeline([llm, LLMAssistantAggregator(context)]), [enable(), run])

    assert texts(down) == "Sure, a table for two."
    assert context.messages[-1] == {"role": "assistant", "content": "● Sure, a table for two."}
    assert count(up, UserTurnInferenceCompletedFrame) == 1
    assert len(server.chat_requests) == 1
    assert FAST.completion_instructions in system_of(server.chat_requests[0])


async def test_an_incomplete_reply_speaks_nothing_and_is_nudged(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("◐")
    server.add_chat_reply("● Go on, I'm listening.")
    context, run = caller_said("i'd like to book a table for")
    llm = make_llm(server)
    pipeline = Pipeline([llm, LLMAssistantAggregator(context)])
    down, up = await run_test(pipeline, [enable(), run, SleepFrame(0.5)])

    assert len(server.chat_requests) == 2
    nudge = server.chat_requests[1]["messages"]
    assert nudge[-2:] == [
        {"role": "assistant", "content": "◐"},
        {"role": "system", "content": FAST.short_prompt},
    ]
    # Only the nudge's answer is spoken; only its ● completes the turn.
    assert texts(down) == "Go on, I'm listening."
    assert context.messages[-1] == {"role": "assistant", "content": "● Go on, I'm listening."}
    assert count(up, UserTurnInferenceCompletedFrame) == 1


async def test_the_long_marker_waits_the_long_timeout(server: FakeOpenAIServer) -> None:
    config = UserTurnCompletionConfig(incomplete_short_timeout=0.05, incomplete_long_timeout=5)
    server.add_chat_reply("○")
    _, run = caller_said("hold on let me check")
    down, _ = await run_test(make_llm(server), [enable(config), run, SleepFrame(0.3)])
    assert len(server.chat_requests) == 1  # 5 s have not passed
    assert texts(down) == ""


@pytest.mark.parametrize("speech", [UserStartedSpeakingFrame, InterruptionFrame])
async def test_the_caller_speaking_again_cancels_the_nudge(
    server: FakeOpenAIServer, speech: type[Frame]
) -> None:
    config = UserTurnCompletionConfig(incomplete_short_timeout=0.5)
    server.add_chat_reply("◐")
    _, run = caller_said("i'd like to")
    probe = MarkerProbe()
    # The caller speaks as soon as the ◐ reply is in (its timer running), however slow the host.
    frames = [enable(config), run, SleepFrame(5, until=lambda: probe.seen), speech()]
    await run_test(Pipeline([make_llm(server), probe]), [*frames, SleepFrame(0.7)])
    assert probe.seen
    assert len(server.chat_requests) == 1


class MarkerProbe(FrameProcessor):
    """Notes when the LLM's turn marker has passed."""

    seen = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMMarkerFrame):
            self.seen = True
        await self.push_frame(frame, direction)


async def test_a_complete_marker_while_the_caller_speaks_is_stale(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply("● Sure.")
    _, run = caller_said("i'd like")
    frames = [enable(), SleepFrame(0.05), VADUserStartedSpeakingFrame(), run]
    down, up = await run_test(make_llm(server), frames)
    assert texts(down) == ""
    assert [f.marker for f in down if isinstance(f, LLMMarkerFrame)] == ["◐"]
    assert count(up, UserTurnInferenceCompletedFrame) == 0


async def test_a_reply_without_a_marker_is_still_spoken(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Hello there.")
    _, run = caller_said("hi")
    down, up = await run_test(make_llm(server), [enable(), run])
    assert texts(down) == "Hello there."
    assert count(down, LLMMarkerFrame) == 0
    assert count(up, UserTurnInferenceCompletedFrame) == 1


async def test_a_tool_call_completes_the_turn(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(tool_calls=[{"name": "lookup", "arguments": {}}])
    server.add_chat_reply("● Found it.")
    llm = make_llm(server)

    async def lookup(params: Any) -> None:
        await params.result_callback({"ok": True})

    llm.register_function("lookup", lookup)
    _, run = caller_said("look it up")
    down, up = await run_test(llm, [enable(), run])
    assert texts(down) == "Found it."
    assert count(up, UserTurnInferenceCompletedFrame) == 2  # the call, then the ● reply


async def test_disabled_the_reply_is_untouched(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("● Hello.")
    _, run = caller_said("hi")
    down, up = await run_test(make_llm(server), [run])
    assert texts(down) == "● Hello."
    assert count(down, LLMMarkerFrame) == 0
    assert count(up, UserTurnInferenceCompletedFrame) == 0
    assert server.chat_requests[0]["messages"][0]["role"] == "user"


async def test_instructions_follow_the_base_instruction_and_go_when_disabled(
    server: FakeOpenAIServer,
) -> None:
    for _ in range(3):
        server.add_chat_reply("● Hi.")
    settings = OpenAILLMService.Settings(system_instruction="Be brief.")
    llm = make_llm(server, settings=settings)
    _, run = caller_said("hi")
    new_base = LLMUpdateSettingsFrame(settings={"system_instruction": "Be kind."})
    frames = [enable(), run, new_base, LLMContextFrame(context=run.context)]
    frames += [enable(on=False), LLMContextFrame(context=run.context)]
    down, _ = await run_test(llm, frames)
    first, second, third = (system_of(r) for r in server.chat_requests)
    assert first == "Be brief.\n\n" + FAST.completion_instructions
    assert second == "Be kind.\n\n" + FAST.completion_instructions
    assert third == "Be kind."
    assert texts(down) == "Hi.Hi.● Hi."
