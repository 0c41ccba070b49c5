"""The official ``google-genai`` SDK's Live client against FakeGeminiLiveServer, and our
service's messages against the SDK's models.

The SDK connects over TLS (it always builds a ``wss://`` address), trusting a certificate made
here. Every message the fake sends must validate as the SDK's ``LiveServerMessage`` (its models
forbid unknown fields); every message ``GeminiLiveLLMService`` sends must validate as
``LiveClientMessage``; and our ``setup`` must be the one the SDK builds for the same config.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import ErrorFrame, Frame, InputAudioRawFrame, LLMContextFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.services.google.gemini_live.llm import (
    EndSensitivity,
    GeminiLiveLLMService,
    GeminiVADParams,
)
from callpipe.services.llm_service import FunctionCallParams
from callpipe.testing import run_test
from callpipe.testing.fakes.gemini_live import FakeGeminiLiveServer, LiveReply, camel_keys
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

RATE = 8000


def sdk(fake: FakeGeminiLiveServer, certificate: tuple[str, str], key: str = "test-key") -> Any:
    trust = ssl.create_default_context(cafile=certificate[0])
    options = types.HttpOptions(base_url=fake.base_url, async_client_args={"ssl": trust})
    return genai.Client(api_key=key, http_options=options)


def check_server_messages(fake: FakeGeminiLiveServer) -> set[str]:
    """Every message the fake sent, as the SDK's strict model; the kinds seen."""
    kinds: set[str] = set()
    for message in fake.sent:
        types.LiveServerMessage.model_validate_json(json.dumps(message))
        kinds.update(message)
        kinds.update(message.get("serverContent", {}))
    return kinds


async def test_sdk_client_talks_to_the_fake(certificate: tuple[str, str]) -> None:
    fake = FakeGeminiLiveServer()
    fake.serve_tls(*certificate)
    fake.replies += [
        LiveReply("Hi there"),
        LiveReply(function_calls=[("lookup", {"q": "x"})]),
        LiveReply("Found it"),
        LiveReply(function_calls=[("lookup", {"q": "y"})]),
    ]
    fake.transcripts.append("hello")
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=100)
        ),
        tools=[{"function_declarations": [{"name": "lookup", "description": "Look it up"}]}],
    )
    received: list[types.LiveServerMessage] = []
    async with fake, asyncio.timeout(10):
        client = sdk(fake, certificate)
        async with client.aio.live.connect(model="gemini-3.8-live", config=config) as session:
            assert session.setup_complete is not None  # the SDK took the fake's setupComplete
            speech = types.Blob(data=tone_pcm(0.2, 16000), mime_type="audio/pcm;rate=16000")
            quiet = types.Blob(data=bytes(6400), mime_type="audio/pcm;rate=16000")
            await session.send_realtime_input(audio=speech)
            await session.send_realtime_input(audio=quiet)
            received += [message async for message in session.receive()]
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="Look up x")])
            )
            async for message in session.receive():
                received.append(message)
                if message.tool_call and message.tool_call.function_calls:
                    call = message.tool_call.function_calls[0]
                    response = types.FunctionResponse(id=call.id, name=call.name, response={})
                    await session.send_tool_response(function_responses=response)
                    break
            received += [message async for message in session.receive()]
            # A call the caller talks over is withdrawn.
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="Look up y")])
            )
            async for message in session.receive():
                if message.tool_call:
                    await session.send_realtime_input(audio=speech)
                if message.tool_call_cancellation:
                    assert message.tool_call_cancellation.ids
                    break
    contents = [m.server_content for m in received if m.server_content]
    assert any(c.input_transcription and c.input_transcription.text for c in contents)
    audio = [
        c.model_turn.parts[0].inline_data for c in contents if c.model_turn and c.model_turn.parts
    ]
    assert audio and all(b and b.mime_type == "audio/pcm;rate=24000" and b.data for b in audio)
    said = "".join(c.output_transcription.text or "" for c in contents if c.output_transcription)
    assert said == "Hi thereFound it"
    assert sum(1 for c in contents if c.turn_complete) == 2
    assert any(m.usage_metadata and m.usage_metadata.response_token_count for m in received)
    # The SDK's setup was taken (it names the model as the API wants) and answered.
    assert fake.of_kind("setup")[0]["model"] == "models/gemini-3.8-live"
    assert check_server_messages(fake) >= {
        "setupComplete",
        "sessionResumptionUpdate",
        "inputTranscription",
        "modelTurn",
        "outputTranscription",
        "generationComplete",
        "turnComplete",
        "usageMetadata",
        "toolCall",
        "toolCallCancellation",
    }


async def test_sdk_sees_a_bad_key_as_gemini_reports_it(certificate: tuple[str, str]) -> None:
    fake = FakeGeminiLiveServer()
    fake.serve_tls(*certificate)
    async with fake:
        client = sdk(fake, certificate, key="wrong")
        with pytest.raises(errors.APIError) as caught:
            async with client.aio.live.connect(model="gemini-3.8-live"):
                pass
    assert caught.value.code == 1007 and "API key not valid" in str(caught.value)


def normalized(setup: dict[str, Any]) -> dict[str, Any]:
    """A setup with the spellings proto JSON treats alike made one: camelCase keys, and no
    role on the system instruction (the SDK adds ``user``)."""
    setup = camel_keys(setup)
    setup.get("systemInstruction", {}).pop("role", None)
    return setup


async def test_our_messages_are_the_sdks(certificate: tuple[str, str]) -> None:
    fake = FakeGeminiLiveServer()
    fake.replies += [LiveReply(function_calls=[("lookup", {"q": "x"})]), LiveReply("Found it")]
    lookup = FunctionSchema("lookup", "Look it up", {"q": {"type": "string"}}, required=["q"])
    settings = GeminiLiveLLMService.Settings(
        voice="Puck",
        temperature=0.4,
        vad=GeminiVADParams(
            silence_duration_ms=100, end_sensitivity=EndSensitivity.END_SENSITIVITY_LOW
        ),
        context_window_compression={"enabled": True, "trigger_tokens": 20000},
    )

    async def handler(params: FunctionCallParams) -> None:
        await params.result_callback({"found": True})

    pcm = tone_pcm(0.1, RATE)
    frames: list[Frame] = [
        LLMContextFrame(LLMContext([{"role": "user", "content": "Find x"}])),
        SleepFrame(5.0, until=lambda: len(fake.server_content("turnComplete")) >= 1),
        InputAudioRawFrame(pcm[:320], RATE),
        InputAudioRawFrame(pcm[320:640], RATE),
        SleepFrame(0.05),
    ]
    async with fake:
        llm = GeminiLiveLLMService(
            api_key="test-key",
            system_instruction="Be brief.",
            tools=ToolsSchema(standard_tools=[lookup]),
            settings=settings,
            http_options={"base_url": fake.base_url},
        )
        llm.register_function("lookup", handler)
        _, up = await run_test(llm, frames, params=PipelineParams(audio_in_sample_rate=RATE))
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    kinds = set()
    for raw in fake.raw_received:
        message = json.loads(raw)
        kinds.update(message)
        if "setup" in message:
            # This SDK's LiveClientSetup lacks realtimeInputConfig (its LiveConnectConfig has it).
            types.RealtimeInputConfig.model_validate(message["setup"].pop("realtimeInputConfig"))
            types.LiveClientMessage.model_validate_json(json.dumps(message))
        else:
            types.LiveClientMessage.model_validate_json(raw)
    assert kinds == {"setup", "clientContent", "toolResponse", "realtimeInput"}

    # The SDK, given our setup as its config, sends the same setup.
    ours = fake.of_kind("setup")[0]
    config = types.LiveConnectConfig.model_validate({k: v for k, v in ours.items() if k != "model"})
    tls_fake = FakeGeminiLiveServer()
    tls_fake.serve_tls(*certificate)
    async with tls_fake:
        client = sdk(tls_fake, certificate)
        with pytest.warns(DeprecationWarning, match="generation_config"):
            async with client.aio.live.connect(model=ours["model"], config=config):
                pass
    assert normalized(tls_fake.of_kind("setup")[0]) == normalized(ours)
