"""The ``openai`` SDK's Azure client against FakeOpenAIServer's Azure routes, and the requests
of the OpenAI-compatible provider services against the SDK's request params.

``AsyncAzureOpenAI`` builds the dated API's URL (deployment in the path, ``api-version`` in the
query, key in ``api-key``): the fake must answer it with chunks the SDK parses, and
``AzureLLMService`` must send the same URL and header. Each provider's request body (quirks
included) must still be a valid streaming Chat Completions request.
"""

from __future__ import annotations

import importlib
from typing import Any

from openai import AsyncAzureOpenAI
from openai.types.chat import ChatCompletionChunk, completion_create_params
from pydantic import TypeAdapter

from callpipe.frames.frames import LLMMessagesFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.azure.llm import AzureLLMService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeOpenAIServer

CHAT_PARAMS = TypeAdapter(completion_create_params.CompletionCreateParamsStreaming)

PROVIDERS = [
    ("groq", "GroqLLMService", {"reasoning_effort": "low"}),
    ("together", "TogetherLLMService", {"reasoning": {"enabled": False}}),
    ("fireworks", "FireworksLLMService", {"max_completion_tokens": 50}),
    ("openrouter", "OpenRouterLLMService", {"provider": {"order": ["a"]}}),
    ("deepseek", "DeepSeekLLMService", {"max_completion_tokens": 50}),
    ("xai", "GrokLLMService", {"reasoning_effort": "low"}),
    ("mistral", "MistralLLMService", {"seed": 3}),
    ("perplexity", "PerplexityLLMService", {"temperature": 0.2}),
    ("nvidia", "NvidiaLLMService", {}),
    ("inception", "InceptionLLMService", {"reasoning_effort": "low"}),
]


async def test_sdk_azure_client_streams_from_the_fake_at_our_url() -> None:
    async with FakeOpenAIServer() as fake:
        endpoint = fake.base_url.removesuffix("/v1")
        client = AsyncAzureOpenAI(
            azure_endpoint=endpoint,
            api_key="test-key",
            api_version="2025-04-01-preview",
            max_retries=0,
        )
        stream = await client.chat.completions.create(
            model="my-gpt", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
        await client.close()
        sdk_url = fake.chat_urls[-1]
        sdk_key = fake.request_headers[-1].get("api-key")

        raw = await _raw_chunks(fake, endpoint)
        llm = AzureLLMService(endpoint=endpoint, api_key="test-key", model="my-gpt")
        await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "hi"}])])

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: hi"
    for chunk in raw:
        ChatCompletionChunk.model_validate(chunk, strict=True)
    assert fake.chat_urls[-1] == sdk_url
    assert fake.request_headers[-1].get("api-key") == sdk_key == "test-key"
    assert CHAT_PARAMS.validate_python(fake.chat_requests[-1])


async def _raw_chunks(fake: FakeOpenAIServer, endpoint: str) -> list[dict[str, Any]]:
    import json

    import httpx

    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{endpoint}/openai/deployments/d/chat/completions",
            params={"api-version": "2025-04-01-preview"},
            json={"model": "d", "stream": True, "messages": [{"role": "user", "content": "x"}]},
            headers={"api-key": "test-key"},
        )
    lines = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


async def test_provider_requests_are_valid_chat_completions_requests() -> None:
    async with FakeOpenAIServer() as fake:
        for module, name, fields in PROVIDERS:
            service = getattr(importlib.import_module(f"callpipe.services.{module}.llm"), name)
            llm = service(
                api_key="test-key", base_url=fake.base_url, settings=service.Settings(**fields)
            )
            await run_test(
                llm,
                [LLMMessagesFrame([{"role": "user", "content": "hi"}])],
                params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
            )
    assert len(fake.chat_requests) == len(PROVIDERS)
    for (module, _, _), body in zip(PROVIDERS, fake.chat_requests, strict=True):
        assert CHAT_PARAMS.validate_python(body), module
