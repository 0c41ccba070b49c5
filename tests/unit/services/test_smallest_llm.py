"""SmallestLLMService (Electron) against FakeOpenAIServer: the default model, the key's
variable and Smallest's base URL."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest

from callpipe.errors import ConfigurationError
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.smallest.llm import SmallestLLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer

from .helpers import errors, texts


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


async def test_streams_a_reply_from_electron(server: FakeOpenAIServer) -> None:
    server.add_chat_reply("Hello from Electron.")
    llm = SmallestLLMService(api_key="test-key", base_url=server.base_url)
    context = OpenAILLMContext([{"role": "user", "content": "hi"}])
    down, up = await run_test(llm, [OpenAILLMContextFrame(context=context)])
    assert not errors(up)
    assert texts(down) == "Hello from Electron."
    request = server.chat_requests[0]
    assert request["model"] == "electron" and request["stream"] is True
    assert server.request_headers[-1]["authorization"] == "Bearer test-key"


async def test_settings_model_wins(server: FakeOpenAIServer) -> None:
    settings = SmallestLLMService.Settings(model="electron-2")
    llm = SmallestLLMService(api_key="k", base_url=server.base_url, settings=settings)
    assert llm.model_name == "electron-2" and isinstance(llm.settings, SmallestLLMService.Settings)


def test_defaults_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    default = inspect.signature(SmallestLLMService).parameters["base_url"].default
    assert default == "https://api.smallest.ai/waves/v1"
    monkeypatch.delenv("SMALLEST_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SMALLEST_API_KEY"):
        SmallestLLMService()
    monkeypatch.setenv("SMALLEST_API_KEY", "from-env")
    llm = SmallestLLMService()
    assert llm._api_key == "from-env" and llm.model_name == "electron"
