"""GoogleLLMService against FakeGeminiServer: streaming, tools, thought signatures, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ErrorFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesFrame,
    LLMTextFrame,
    LLMUpdateSettingsFrame,
    MetricsFrame,
)
from callpipe.metrics.metrics import LLMUsageMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.google.llm import GoogleLLMService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.settings import LLMSettings
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeGeminiServer
from callpipe.testing.fakes.gemini import GeminiReply
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_calls import virtual_time

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


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiServer]:
    async with FakeGeminiServer() as server:
        yield server


def make_llm(fake: FakeGeminiServer, **kwargs: object) -> GoogleLLMService:
    return GoogleLLMService(api_key="test-key", base_url=fake.base_url, **kwargs)  # type: ignore[arg-type]


def text(frames: list[object]) -> str:
    return "".join(f.text for f in frames if isinstance(f, LLMTextFrame))


async def test_streams_text_with_system_instruction(fake: FakeGeminiServer) -> None:
    fake.add_reply("Hello there, how can I help?")
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    params = PipelineParams(enable_metrics=True, enable_usage_metrics=True)
    down, up = await run_test(make_llm(fake), [LLMMessagesFrame(messages)], params=params)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert text(down) == "Hello there, how can I help?"
    kinds = [type(f) for f in down]
    assert kinds.index(LLMFullResponseStartFrame) < kinds.index(LLMTextFrame)
    assert kinds.index(LLMFullResponseEndFrame) > max(
        i for i, k in enumerate(kinds) if k is LLMTextFrame
    )
    body = fake.requests[-1]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    assert fake.paths[-1].endswith(":streamGenerateContent?alt=sse")
    usage = [
        d
        for f in down
        if isinstance(f, MetricsFrame)
        for d in f.data
        if isinstance(d, LLMUsageMetricsData)
    ]
    assert usage and usage[0].value.prompt_tokens == 12


async def test_greets_when_the_context_has_only_instructions(fake: FakeGeminiServer) -> None:
    context = OpenAILLMContext([{"role": "system", "content": "Greet the caller."}])
    down, up = await run_test(make_llm(fake), [OpenAILLMContextFrame(context)])
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert text(down) == "You said: Greet the caller."
    assert "systemInstruction" not in fake.requests[-1]


async def test_tool_call_round_trip_keeps_the_thought_signature(fake: FakeGeminiServer) -> None:
    fake.add_reply(function_calls=[{"name": "get_weather", "args": {"city": "Paris"}}])
    fake.add_reply("It is sunny in Paris.")
    llm = make_llm(fake)
    seen: list[dict[str, object]] = []

    async def get_weather(params: FunctionCallParams) -> None:
        seen.append(params.arguments)
        await params.result_callback({"forecast": "sunny"})

    llm.register_function("get_weather", get_weather)
    context = OpenAILLMContext([{"role": "user", "content": "Weather?"}], tools=TOOLS)
    down, up = await run_test(llm, [OpenAILLMContextFrame(context)])
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert seen == [{"city": "Paris"}]
    assert text(down) == "It is sunny in Paris."
    first, second = fake.requests
    declaration = first["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather"
    assert "additionalProperties" not in declaration["parameters"]
    call_turn, result_turn = second["contents"][1], second["contents"][2]
    assert call_turn["role"] == "model"
    assert call_turn["parts"][0]["functionCall"] == {
        "name": "get_weather",
        "args": {"city": "Paris"},
    }
    assert call_turn["parts"][0]["thoughtSignature"] in fake.signatures
    assert result_turn == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"forecast": "sunny"}}}],
    }
    # The call and its result are in the context (the answer is added by the aggregator).
    assert [m["role"] for m in context.messages] == ["user", "assistant", "tool"]


async def test_tool_choice_maps_to_function_calling_config(fake: FakeGeminiServer) -> None:
    context = OpenAILLMContext(
        [{"role": "user", "content": "x"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    await run_test(make_llm(fake), [OpenAILLMContextFrame(context)])
    assert fake.requests[-1]["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


async def test_bad_key_is_fatal_at_start(fake: FakeGeminiServer) -> None:
    llm = GoogleLLMService(api_key="wrong", base_url=fake.base_url)
    _, up = await run_test(llm, [SleepFrame(10)])  # the fatal error ends the run at once
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal and "GOOGLE_API_KEY" in errors[0].error
    assert "API key not valid" in errors[0].error


async def test_server_error_is_retried_once_then_reported(fake: FakeGeminiServer) -> None:
    fake.add_reply(status=503, error_message="overloaded")
    fake.add_reply(status=503, error_message="overloaded")
    down, up = await run_test(
        make_llm(fake), [LLMMessagesFrame([{"role": "user", "content": "x"}])]
    )
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(fake.requests) == 2
    assert errors and not errors[0].fatal and "overloaded" in errors[0].error
    assert any(isinstance(f, LLMFullResponseEndFrame) for f in down)


async def test_missing_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="GOOGLE_API_KEY"):
        GoogleLLMService()


def test_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPIPE_GEMINI_URL", "http://127.0.0.1:5/")
    assert GoogleLLMService(api_key="k")._base_url == "http://127.0.0.1:5"


class _StallingGemini(FakeGeminiServer):
    """Says nothing for 20 s before the first streamed answer, as a stuck request does."""

    stalls = 1

    async def _events(
        self, responses: list[dict[str, Any]], reply: GeminiReply
    ) -> AsyncIterator[str]:
        if self.stalls:
            self.stalls -= 1
            await asyncio.sleep(20.0)
        async for event in super()._events(responses, reply):
            yield event


@virtual_time
async def test_retry_on_timeout_sends_a_silent_request_again_once() -> None:
    async with _StallingGemini() as fake:
        fake.add_reply("Too late.")
        fake.add_reply("On time.")
        llm = make_llm(fake, retry_on_timeout=True, retry_timeout_secs=2.0)
        down, up = await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "x"}])])
    assert text(down) == "On time."
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert len(fake.requests) == 2


async def test_settings_at_construction_reach_the_request(fake: FakeGeminiServer) -> None:
    llm = make_llm(
        fake,
        params=GoogleLLMService.InputParams(temperature=0.1, max_tokens=50),
        settings=GoogleLLMService.Settings(
            model="gemini-2.5-pro",
            system_instruction="Speak like a pirate.",
            temperature=0.4,
            top_p=0.8,
            top_k=30,
            max_tokens=200,
            seed=7,
            extra={"stop_sequences": ["END"], "responseMimeType": "text/plain"},
        ),
    )
    await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "Hi"}])])
    body = fake.requests[-1]
    assert fake.paths[-1].startswith("/v1beta/models/gemini-2.5-pro:")
    assert body["systemInstruction"] == {"parts": [{"text": "Speak like a pirate."}]}
    assert body["generationConfig"] == {
        "temperature": 0.4,
        "topP": 0.8,
        "topK": 30,
        "maxOutputTokens": 200,
        "seed": 7,
        "stopSequences": ["END"],
        "responseMimeType": "text/plain",
        "thinkingConfig": {"thinkingBudget": 128},  # 2.5 Pro's lowest thinking setting
    }


async def test_update_settings_frame_changes_the_next_request(fake: FakeGeminiServer) -> None:
    llm = make_llm(fake, params=GoogleLLMService.InputParams(temperature=0.2))
    turn = [{"role": "user", "content": "Hi"}]
    await run_test(
        llm,
        [
            LLMMessagesFrame(turn),
            SleepFrame(0.2),
            LLMUpdateSettingsFrame(
                delta=GoogleLLMService.Settings(
                    temperature=0.9,
                    max_tokens=64,
                    seed=3,
                    system_instruction="Be terse.",
                    thinking=GoogleLLMService.ThinkingConfig(thinking_budget=512),
                    extra={"top_k": 5},
                )
            ),
            LLMMessagesFrame(turn),
            SleepFrame(0.2),
            LLMUpdateSettingsFrame(
                settings={"temperature": 0.5, "thinking": {"thinking_budget": 8}}
            ),
            LLMMessagesFrame(turn),
        ],
    )
    first, second, third = fake.requests
    assert first["generationConfig"] == {
        "temperature": 0.2,
        "maxOutputTokens": 4096,
        "thinkingConfig": {"thinkingBudget": 0},
    }
    assert "systemInstruction" not in first
    assert second["generationConfig"] == {
        "temperature": 0.9,
        "maxOutputTokens": 64,
        "seed": 3,
        "topK": 5,
        "thinkingConfig": {"thinkingBudget": 512},
    }
    assert second["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert third["generationConfig"]["temperature"] == 0.5
    assert third["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 8}
    assert llm.settings.temperature == 0.5


async def test_safety_and_thinking_settings_use_gemini_wire_names(fake: FakeGeminiServer) -> None:
    llm = make_llm(
        fake,
        settings=GoogleLLMService.Settings(
            model="gemini-3-flash-preview",
            thinking=GoogleLLMService.ThinkingConfig(thinking_level="low", include_thoughts=True),
            safety_settings=[
                {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "block_only_high"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_NONE"},
            ],
        ),
    )
    await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "Hi"}])])
    body = fake.requests[-1]
    assert body["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"},
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_NONE"},
    ]
    assert "safetySettings" not in body["generationConfig"]
    assert body["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "LOW",
        "includeThoughts": True,
    }


async def test_sdk_safety_and_thinking_objects_are_accepted(fake: FakeGeminiServer) -> None:
    types = pytest.importorskip("google.genai.types")
    llm = make_llm(
        fake,
        settings=GoogleLLMService.Settings(
            thinking=types.ThinkingConfig(thinking_budget=256),
            safety_settings=[
                types.SafetySetting(
                    category=types.HarmCategory.HARM_CATEGORY_HATE_SPEECH,
                    threshold=types.HarmBlockThreshold.BLOCK_LOW_AND_ABOVE,
                )
            ],
        ),
    )
    await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "Hi"}])])
    body = fake.requests[-1]
    assert body["safetySettings"] == [
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_LOW_AND_ABOVE"}
    ]
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 256}
    types.GenerationConfig.model_validate(body["generationConfig"])
    for entry in body["safetySettings"]:
        types.SafetySetting.model_validate(entry)


async def test_extra_thinking_config_wins_over_the_low_latency_default(
    fake: FakeGeminiServer,
) -> None:
    llm = make_llm(
        fake, settings=GoogleLLMService.Settings(extra={"thinking_config": {"thinking_budget": -1}})
    )
    await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "Hi"}])])
    assert fake.requests[-1]["generationConfig"]["thinkingConfig"] == {"thinkingBudget": -1}


HI = LLMMessagesFrame([{"role": "user", "content": "Hi"}])


@pytest.mark.parametrize(
    ("model", "lowest"),
    [
        ("gemini-2.5-flash", {"thinkingBudget": 0}),
        ("gemini-2.5-pro", {"thinkingBudget": 128}),
        ("gemini-3-flash-preview", {"thinkingLevel": "MINIMAL"}),
        ("gemini-3.1-pro-preview", {"thinkingLevel": "LOW"}),
        ("gemma-4-31b-it", {"thinkingLevel": "MINIMAL"}),
    ],
)
async def test_use_provider_thinking_default_sends_no_lowest_thinking(
    fake: FakeGeminiServer, model: str, lowest: dict[str, Any]
) -> None:
    unset = make_llm(fake, settings=GoogleLLMService.Settings(model=model))
    assert unset.settings.use_provider_thinking_default is False  # unset counts as False
    await run_test(unset, [HI])
    for flag in (False, True):
        settings = GoogleLLMService.Settings(model=model, use_provider_thinking_default=flag)
        await run_test(make_llm(fake, settings=settings), [HI])
    configs = [body.get("generationConfig", {}) for body in fake.requests]
    assert [config.get("thinkingConfig") for config in configs] == [lowest, lowest, None]


@pytest.mark.parametrize(
    "model", ["gemini-flash-latest", "gemini-2.5-flash-image", "gemini-2.0-flash"]
)
async def test_models_pipecat_lists_no_default_for_get_googles_default(
    fake: FakeGeminiServer, model: str
) -> None:
    await run_test(make_llm(fake, settings=GoogleLLMService.Settings(model=model)), [HI])
    assert "thinkingConfig" not in fake.requests[-1].get("generationConfig", {})


async def test_use_provider_thinking_default_changes_mid_call(fake: FakeGeminiServer) -> None:
    on = LLMUpdateSettingsFrame(delta=LLMSettings(use_provider_thinking_default=True))
    off = LLMUpdateSettingsFrame(
        delta=GoogleLLMService.Settings(use_provider_thinking_default=False)
    )
    down, up = await run_test(make_llm(fake), [HI, on, HI, off, HI])
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    configs = [body.get("generationConfig", {}) for body in fake.requests]
    assert [config.get("thinkingConfig") for config in configs] == [
        {"thinkingBudget": 0},
        None,
        {"thinkingBudget": 0},
    ]
