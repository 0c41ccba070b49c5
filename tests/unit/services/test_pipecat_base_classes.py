"""Pipecat's module paths for the bases of custom OpenAI-compatible services: a subclass written
against them runs on callpipe, talking to the fake the way it would to its provider."""

from __future__ import annotations

from typing import Any

from callpipe.frames.frames import ErrorFrame, TranscriptionFrame
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.openai.base_llm import BaseOpenAILLMService
from callpipe.services.whisper.base_stt import BaseWhisperSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer

from .helpers import PHONE, texts


class AcmeLLMService(BaseOpenAILLMService):
    """The usual custom provider: its own URL and default model."""

    def __init__(self, *, url: str, **kwargs: Any) -> None:
        super().__init__(api_key="test-key", base_url=url, model="acme-1", **kwargs)


class AcmeSTTService(BaseWhisperSTTService):
    def __init__(self, *, url: str, **kwargs: Any) -> None:
        super().__init__(api_key="test-key", base_url=url, model="acme-whisper", **kwargs)


async def test_a_custom_llm_on_pipecat_s_base_class_streams_from_its_own_url() -> None:
    async with FakeOpenAIServer() as server:
        server.add_chat_reply("Acme here.")
        context = OpenAILLMContext([{"role": "user", "content": "hi"}])
        llm = AcmeLLMService(url=server.base_url)
        down, up = await run_test(llm, [OpenAILLMContextFrame(context=context)])
    assert texts(down) == "Acme here."
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert server.chat_requests[0]["model"] == "acme-1"


async def test_a_custom_stt_on_pipecat_s_whisper_base_transcribes_from_its_own_url() -> None:
    from .test_openai_stt import utterance

    async with FakeOpenAIServer() as server:
        server.transcripts.append("acme transcript")
        down, _ = await run_test(AcmeSTTService(url=server.base_url), utterance(), params=PHONE)
    finals = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert finals == ["acme transcript"]
    assert server.transcription_requests[0]["model"] == "acme-whisper"


def test_the_invocation_params_type_is_at_both_of_pipecat_s_paths() -> None:
    from callpipe.adapters.llm.services.open_ai_adapter import OpenAILLMInvocationParams
    from callpipe.adapters.services.open_ai_adapter import OpenAILLMInvocationParams as Older

    assert Older is OpenAILLMInvocationParams
    assert set(OpenAILLMInvocationParams.__annotations__) == {"messages", "tools", "tool_choice"}
