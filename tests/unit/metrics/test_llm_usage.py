"""Token usage details (cache, reasoning) from the OpenAI and Gemini fakes, as in Pipecat 1.14."""

from __future__ import annotations

from callpipe.frames.frames import Frame, LLMMessagesFrame, MetricsFrame
from callpipe.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.services.google.llm import GoogleLLMService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeGeminiServer
from callpipe.testing.fakes.openai import FakeOpenAIServer

USAGE_ON = PipelineParams(enable_metrics=True, enable_usage_metrics=True)
ASK = [LLMMessagesFrame([{"role": "user", "content": "hi"}])]


def usages(frames: list[Frame]) -> list[LLMTokenUsage]:
    return [
        d.value
        for f in frames
        if isinstance(f, MetricsFrame)
        for d in f.data
        if isinstance(d, LLMUsageMetricsData) and d.value is not None
    ]


async def test_openai_cached_and_reasoning_tokens() -> None:
    async with FakeOpenAIServer() as server:
        server.add_chat_reply("One two three.", cached_tokens=1024, reasoning_tokens=40)
        llm = OpenAILLMService(api_key="test-key", base_url=server.base_url, model="m")
        down, _ = await run_test(llm, ASK, params=USAGE_ON)
    [usage] = usages(down)
    assert usage.cache_read_input_tokens == 1024
    assert usage.reasoning_tokens == 40
    assert usage.prompt_tokens == 10 + 1024  # OpenAI counts cached input inside the prompt
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.input_audio_tokens == 0 and usage.output_audio_tokens == 0
    assert usage.cache_creation_input_tokens is None


async def test_openai_without_details_leaves_them_unreported() -> None:
    async with FakeOpenAIServer() as server:
        server.add_chat_reply("Plain.")
        llm = OpenAILLMService(api_key="test-key", base_url=server.base_url, model="m")
        down, _ = await run_test(llm, ASK, params=USAGE_ON)
    [usage] = usages(down)
    assert usage.prompt_tokens == 10
    assert usage.cache_read_input_tokens is None and usage.reasoning_tokens is None


async def test_gemini_cached_and_thinking_tokens() -> None:
    async with FakeGeminiServer() as fake:
        fake.add_reply("One two.", cached_tokens=300, thoughts_tokens=25)
        llm = GoogleLLMService(api_key="test-key", base_url=fake.base_url)
        down, _ = await run_test(llm, ASK, params=USAGE_ON)
    [usage] = usages(down)
    assert usage.cache_read_input_tokens == 300
    assert usage.reasoning_tokens == 25
    # Thinking is billed as output: counted in the completion, as other providers do.
    assert usage.completion_tokens == 2 + 25
    assert usage.prompt_tokens == 12 + 300
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_gemini_without_details_leaves_them_unreported() -> None:
    async with FakeGeminiServer() as fake:
        fake.add_reply("Plain.")
        llm = GoogleLLMService(api_key="test-key", base_url=fake.base_url)
        down, _ = await run_test(llm, ASK, params=USAGE_ON)
    [usage] = usages(down)
    assert usage.completion_tokens == 1
    assert usage.cache_read_input_tokens is None and usage.reasoning_tokens is None
