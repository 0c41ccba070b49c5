"""The official ``google-genai`` SDK against FakeGeminiServer, and our requests against its models.

The SDK must stream through the fake and parse every response; our request bodies must validate
as the SDK's own ``Content`` / ``Tool`` / ``ToolConfig`` / ``GenerationConfig`` models (they
forbid unknown fields, so a misspelt key fails).
"""

from __future__ import annotations

from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from callpipe.frames.frames import ErrorFrame
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.google.llm import GoogleLLMService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeGeminiServer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]


def sdk(fake: FakeGeminiServer, key: str = "test-key") -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=fake.base_url))


async def test_sdk_streams_text_and_function_calls_through_the_fake() -> None:
    async with FakeGeminiServer() as fake:
        fake.add_reply("Hello from the fake.")
        fake.add_reply(function_calls=[{"name": "get_weather", "args": {"city": "Oslo"}}])
        client = sdk(fake)
        chunks = [
            chunk
            async for chunk in await client.aio.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Hi"
            )
        ]
        response = await client.aio.models.generate_content(
            model="gemini-2.5-flash", contents="Weather in Oslo?"
        )
    assert "".join(c.text or "" for c in chunks) == "Hello from the fake."
    assert chunks[-1].usage_metadata is not None
    assert chunks[-1].usage_metadata.total_token_count
    [call] = response.function_calls or []
    assert call.name == "get_weather" and call.args == {"city": "Oslo"}
    assert fake.paths[0].endswith(":streamGenerateContent?alt=sse")


async def test_sdk_sees_a_bad_key_as_gemini_reports_it() -> None:
    async with FakeGeminiServer() as fake:
        with pytest.raises(errors.ClientError) as caught:
            await sdk(fake, "wrong").aio.models.generate_content(
                model="gemini-2.5-flash", contents="Hi"
            )
    assert caught.value.code == 400 and "API key not valid" in str(caught.value)


async def test_our_requests_validate_as_sdk_models() -> None:
    async with FakeGeminiServer() as fake:
        fake.add_reply(function_calls=[{"name": "get_weather", "args": {"city": "Paris"}}])
        fake.add_reply("Sunny.")
        llm = GoogleLLMService(
            api_key="test-key",
            base_url=fake.base_url,
            params=GoogleLLMService.InputParams(temperature=0.3, top_p=0.9),
            settings=GoogleLLMService.Settings(
                safety_settings=[
                    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}
                ]
            ),
        )

        async def get_weather(params: FunctionCallParams) -> None:
            await params.result_callback("sunny")

        llm.register_function("get_weather", get_weather)
        context = OpenAILLMContext(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
            ],
            tools=TOOLS,
            tool_choice="auto",
        )
        _, up = await run_test(llm, [OpenAILLMContextFrame(context)])
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert len(fake.requests) == 2
    for body in fake.requests:
        check_body(body)
        assert body["safetySettings"][0]["threshold"] == "BLOCK_ONLY_HIGH"


def check_body(body: dict[str, Any]) -> None:
    known = {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
    }
    assert set(body) <= known
    for content in body["contents"]:
        types.Content.model_validate(content)
    if "systemInstruction" in body:
        types.Content.model_validate(body["systemInstruction"])
    for tool in body.get("tools", []):
        types.Tool.model_validate(tool)
    if "toolConfig" in body:
        types.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        types.GenerationConfig.model_validate(body["generationConfig"])
    for setting in body.get("safetySettings", []):
        types.SafetySetting.model_validate(setting)
