"""SarvamLLMService against FakeOpenAIServer: URL, headers, body rules, refused requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from callpipe.errors import ConfigurationError
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.sarvam.llm import SarvamLLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer

from .helpers import errors, texts


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        fake.api_key = "sk-sarvam"
        yield fake


def make(server: FakeOpenAIServer, **kwargs: Any) -> SarvamLLMService:
    return SarvamLLMService(api_key="sk-sarvam", base_url=server.base_url, **kwargs)


def context(*messages: dict[str, Any], **kwargs: Any) -> OpenAILLMContext:
    return OpenAILLMContext(list(messages) or [{"role": "user", "content": "hi"}], **kwargs)


async def test_streams_a_reply_with_sarvam_headers_and_body(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Namaste.")
    llm = make(
        server,
        settings=SarvamLLMService.Settings(
            reasoning_effort="low", wiki_grounding=True, max_completion_tokens=50
        ),
    )
    ctx = context({"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"})
    down, up = await run_test(llm, [OpenAILLMContextFrame(context=ctx)])

    assert not errors(up) and texts(down) == "Namaste."
    body = server.chat_requests[0]
    assert body["model"] == "sarvam-105b"
    assert body["messages"][0] == {"role": "user", "content": "be brief"}
    assert body["reasoning_effort"] == "low" and body["wiki_grounding"] is True
    for absent in ("stream_options", "max_completion_tokens", "service_tier"):
        assert absent not in body
    headers = server.request_headers[-1]
    assert headers["api-subscription-key"] == "sk-sarvam"
    assert headers["authorization"] == "Bearer sk-sarvam"


async def test_unset_options_are_not_sent(server: FakeOpenAIServer) -> None:
    await run_test(make(server), [OpenAILLMContextFrame(context=context(tool_choice="auto"))])
    body = server.chat_requests[0]
    for absent in ("reasoning_effort", "wiki_grounding", "tool_choice"):
        assert absent not in body


def test_base_url_follows_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLPIPE_OPENAI_COMPATIBLE_URL", raising=False)
    monkeypatch.setenv("SARVAM_API_KEY", "from-env")
    llm: Any = SarvamLLMService()
    assert llm._base_url == "https://api.sarvam.ai/v2" and llm._api_key == "from-env"
    conv = SarvamLLMService.Settings(model="sarvam-105b-conversations")
    llm = SarvamLLMService(settings=conv)
    assert llm._base_url == "https://api.sarvam.ai/v1"
    llm = SarvamLLMService(model="gemma4")
    assert llm.model_name == "gemma4" and llm.settings.model == "gemma4"


def test_the_fakes_variable_replaces_the_chosen_address_not_a_given_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SARVAM_API_KEY", "from-env")
    monkeypatch.setenv("CALLPIPE_OPENAI_COMPATIBLE_URL", "http://127.0.0.1:9/v1")
    llm: Any = SarvamLLMService()
    assert llm._base_url == "http://127.0.0.1:9/v1"
    llm = SarvamLLMService(base_url="http://gateway.example/v1")
    assert llm._base_url == "http://gateway.example/v1"


def test_an_unknown_model_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="sarvam-m"):
        SarvamLLMService(api_key="k", settings=SarvamLLMService.Settings(model="sarvam-m"))


@pytest.mark.parametrize(
    ("settings", "ctx", "said"),
    [
        (
            {"model": "sarvam-105b"},
            context({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}),
            "images",
        ),
        ({"model": "sarvam-105b-conversations", "reasoning_effort": "high"}, context(), "reason"),
        ({"model": "glm5.3", "wiki_grounding": False}, context(), "wiki_grounding"),
    ],
)
async def test_a_request_the_model_cannot_take_is_not_sent(
    server: FakeOpenAIServer, settings: dict[str, Any], ctx: OpenAILLMContext, said: str
) -> None:
    llm = make(server, settings=SarvamLLMService.Settings(**settings))
    down, up = await run_test(llm, [OpenAILLMContextFrame(context=ctx)])
    assert server.chat_requests == []
    [error] = errors(up)
    assert said in error.error and not error.fatal
    assert await llm.run_inference(ctx) is None
    assert server.chat_requests == []
