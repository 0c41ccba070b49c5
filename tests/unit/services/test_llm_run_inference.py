"""LLMService.run_inference: one completion outside the pipeline, for OpenAI and Gemini."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from callpipe.errors import CallpipeError
from callpipe.frames.frames import (
    EndFrame,
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services.ai_service import ServiceAuthError
from callpipe.services.google.llm import GoogleLLMService
from callpipe.services.llm_service import LLMService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeGeminiServer
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import FrameCollector

from .helpers import openai_llm, texts


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGeminiServer]:
    async with FakeGeminiServer() as fake:
        yield fake


def gemini_llm(fake: FakeGeminiServer, **kwargs: object) -> GoogleLLMService:
    return GoogleLLMService(api_key="test-key", base_url=fake.base_url, **kwargs)  # type: ignore[arg-type]


def question() -> LLMContext:
    return LLMContext([{"role": "user", "content": "Summarize: the caller wants a refund."}])


async def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def run_inference_during_a_turn(
    llm: LLMService, turn_context: LLMContext, inference_context: LLMContext
) -> tuple[list[Frame], str | None]:
    """Stream a turn; once its first words are out, run an inference beside it."""
    down = FrameCollector(FrameDirection.DOWNSTREAM)
    task = PipelineTask(Pipeline([llm, down]), idle_timeout_secs=None)
    runner = asyncio.get_running_loop().create_task(task.run())
    await task.queue_frame(LLMContextFrame(context=turn_context))
    await wait_until(lambda: any(isinstance(f, LLMTextFrame) for f in down.frames))
    answer = await llm.run_inference(inference_context)
    await wait_until(lambda: any(isinstance(f, LLMFullResponseEndFrame) for f in down.frames))
    await task.queue_frame(EndFrame())
    await runner
    return down.frames, answer


async def test_base_service_has_no_run_inference() -> None:
    with pytest.raises(NotImplementedError):
        await LLMService().run_inference(question())


async def test_after_a_call_that_ended_before_the_service_started_it_answers_at_once(
    openai: FakeOpenAIServer,
) -> None:
    """A post-call summary on a call that ended at once: the start never ran, and nothing must
    wait for it (it used to wait out the service's 10 s start timeout)."""
    openai.add_chat_reply("The call was too short to say anything.")
    llm = openai_llm(openai)
    await run_test(llm, [])  # StartFrame then EndFrame, before the start task ran
    answer = await asyncio.wait_for(llm.run_inference(question()), timeout=3.0)
    assert answer == "The call was too short to say anything."


# ------------------------------------------------------------------ OpenAI


async def test_openai_returns_the_joined_text(openai: FakeOpenAIServer) -> None:
    openai.add_chat_reply("The caller wants a refund for order 42.")
    llm = openai_llm(openai, params=OpenAILLMService.InputParams(max_tokens=900))

    answer = await llm.run_inference(question(), max_tokens=50, system_instruction="Be terse.")

    assert answer == "The caller wants a refund for order 42."
    body = openai.chat_requests[0]
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Summarize: the caller wants a refund."},
    ]
    assert body["max_tokens"] == 50 and body["model"] == "fake-model"
    assert "response_format" not in body
    await llm.cleanup()


async def test_openai_uses_the_configured_instruction_and_completion_limit(
    openai: FakeOpenAIServer,
) -> None:
    settings = OpenAILLMService.Settings(
        system_instruction="You are a support agent.", max_completion_tokens=700
    )
    llm = openai_llm(openai, settings=settings)
    schema = {
        "type": "object",
        "properties": {"refund": {"type": "boolean"}},
        "required": ["refund"],
        "additionalProperties": False,
    }

    await llm.run_inference(question(), max_tokens=60, response_schema=schema)

    body = openai.chat_requests[0]
    assert body["messages"][0] == {"role": "system", "content": "You are a support agent."}
    assert body["max_completion_tokens"] == 60 and "max_tokens" not in body
    assert body["response_format"]["json_schema"]["schema"] == schema
    await llm.cleanup()


async def test_openai_errors_raise(openai: FakeOpenAIServer) -> None:
    llm = openai_llm(openai)
    openai.add_chat_reply(status=500, error_message="overloaded")
    with pytest.raises(CallpipeError, match="overloaded"):
        await llm.run_inference(question())
    openai.add_chat_reply(status=401, error_message="bad key")
    with pytest.raises(ServiceAuthError):
        await llm.run_inference(question())
    await llm.cleanup()


async def test_openai_inference_beside_a_streaming_turn(openai: FakeOpenAIServer) -> None:
    openai.add_chat_reply("one two three four five six seven eight", chunk_delay=0.03)
    openai.add_chat_reply("A short summary.")
    llm = openai_llm(openai)
    turn = LLMContext([{"role": "user", "content": "count"}])

    frames, answer = await run_inference_during_a_turn(llm, turn, question())

    assert answer == "A short summary."
    assert texts(frames) == "one two three four five six seven eight"
    starts = [f for f in frames if isinstance(f, LLMFullResponseStartFrame)]
    ends = [f for f in frames if isinstance(f, LLMFullResponseEndFrame)]
    assert len(starts) == len(ends) == 1
    assert len(openai.chat_requests) == 2 and openai.cancelled_streams == 0
    assert turn.messages == [{"role": "user", "content": "count"}]


# ------------------------------------------------------------------ Gemini


async def test_gemini_returns_the_text(gemini: FakeGeminiServer) -> None:
    gemini.add_reply("The caller wants a refund.")
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {}}}]
    llm = gemini_llm(gemini, system_instruction="You are a support agent.", tools=tools)

    answer = await llm.run_inference(question(), max_tokens=80, system_instruction="Be terse.")

    assert answer == "The caller wants a refund."
    assert gemini.paths[-1].endswith(":generateContent")
    body = gemini.requests[-1]
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Summarize: the caller wants a refund."}]}
    ]
    assert body["generationConfig"]["maxOutputTokens"] == 80
    assert "tools" not in body  # the service's turn tools are not offered here
    await llm.cleanup()


async def test_gemini_response_schema_and_errors(gemini: FakeGeminiServer) -> None:
    llm = gemini_llm(gemini)
    schema = {"type": "object", "properties": {"refund": {"type": "boolean"}}}
    gemini.add_reply('{"refund": true}')
    assert await llm.run_inference(question(), response_schema=schema) == '{"refund": true}'
    config = gemini.requests[-1]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema

    gemini.add_reply(status=429, error_message="quota exceeded")
    with pytest.raises(CallpipeError, match="quota exceeded"):
        await llm.run_inference(question())
    await llm.cleanup()


async def test_gemini_rejected_key_raises_auth_error(gemini: FakeGeminiServer) -> None:
    llm = GoogleLLMService(api_key="wrong-key", base_url=gemini.base_url)
    with pytest.raises(ServiceAuthError):
        await llm.run_inference(question())
    await llm.cleanup()


async def test_gemini_inference_beside_a_streaming_turn(gemini: FakeGeminiServer) -> None:
    gemini.add_reply("one two three four five six seven eight", chunk_delay=0.03)
    gemini.add_reply("A short summary.")
    llm = gemini_llm(gemini)
    turn = LLMContext([{"role": "user", "content": "count"}])

    frames, answer = await run_inference_during_a_turn(llm, turn, question())

    assert answer == "A short summary."
    assert texts(frames) == "one two three four five six seven eight"
    starts = [f for f in frames if isinstance(f, LLMFullResponseStartFrame)]
    assert len(starts) == 1
    assert gemini.cancelled_streams == 0
    assert turn.messages == [{"role": "user", "content": "count"}]
