"""The official ``openai`` SDK's Realtime client against FakeOpenAIRealtimeServer, and our
service's client events against the SDK's models.

Every server event the fake sends must validate as the SDK's ``RealtimeServerEvent`` with no
field the SDK does not know; every client event ``OpenAIRealtimeLLMService`` sends must validate
as ``RealtimeClientEvent``, likewise; and our handshake must ask for the path and query the SDK
builds for the same model.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import BaseModel, TypeAdapter

from callpipe.frames.frames import InputAudioRawFrame, LLMContextFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMUserAggregator
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.realtime.events import (
    AudioConfiguration,
    AudioInput,
    InputAudioTranscription,
    SessionProperties,
    TurnDetection,
)
from callpipe.services.openai.realtime.llm import OpenAIRealtimeLLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.openai_realtime import FakeOpenAIRealtimeServer, RealtimeReply
from callpipe.testing.pipeline import SleepFrame
from unit.services.speech_to_speech import HeardReport, InputSide

SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
CLIENT_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeClientEvent)
RATE = 8000


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIRealtimeServer]:
    async with FakeOpenAIRealtimeServer() as server:
        yield server


def extras(model: Any, where: str = "") -> list[str]:
    """Fields a parsed SDK model did not know (the SDK's models keep them as extras)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{where}.{name}" for name in (model.model_extra or {})]
        for name in type(model).model_fields:
            found += extras(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for index, item in enumerate(model):
            found += extras(item, f"{where}[{index}]")
    return found


def check_server_events(fake: FakeOpenAIRealtimeServer) -> set[str]:
    kinds: set[str] = set()
    for event in fake.sent:
        parsed = SERVER_EVENT.validate_python(event)
        assert extras(parsed) == [], (event["type"], extras(parsed))
        kinds.add(event["type"])
    return kinds


async def test_sdk_client_talks_to_the_fake(fake: FakeOpenAIRealtimeServer) -> None:
    fake.replies += [RealtimeReply("Hi there"), RealtimeReply(function_call=("f", {"a": 1}))]
    fake.transcripts.append("hello")
    client = AsyncOpenAI(api_key="test-key", websocket_base_url=fake.url + "/v1")
    received: list[Any] = []
    async with asyncio.timeout(10), client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "gpt-4o-transcribe"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 100},
                    }
                },
            }
        )
        speech = base64.b64encode(tone_pcm(0.2, 24000)).decode()
        quiet = base64.b64encode(bytes(int(0.2 * 24000) * 2)).decode()
        await conn.input_audio_buffer.append(audio=speech)
        await conn.input_audio_buffer.append(audio=quiet)
        async for event in conn:
            received.append(event)
            if event.type == "response.done":
                break
        await conn.response.create()
        async for event in conn:
            received.append(event)
            if event.type == "response.done":
                break
        await conn.response.cancel()  # nothing is running: an error event
        async for event in conn:
            received.append(event)
            if event.type == "error":
                break
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call_1", "output": "{}"}
        )
        await conn.conversation.item.truncate(item_id="nope", content_index=0, audio_end_ms=0)
        async for event in conn:
            received.append(event)
            if event.type == "error":
                break
    kinds = [event.type for event in received]
    assert kinds[0] == "session.created" and "session.updated" in kinds
    assert "input_audio_buffer.speech_started" in kinds
    assert "conversation.item.input_audio_transcription.completed" in kinds
    assert "response.output_audio.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    assert fake.paths == ["/v1/realtime?model=gpt-realtime"]
    # Every event the fake sent validates strictly as the SDK's models.
    assert len(check_server_events(fake)) >= 18


async def test_our_client_events_are_the_sdks(fake: FakeOpenAIRealtimeServer) -> None:
    fake.pace_secs = 0.01
    fake.replies += [
        RealtimeReply(function_call=("lookup", {"q": "x"})),
        RealtimeReply("A long answer", audio_ms=2000),
        RealtimeReply("Yes?"),
    ]
    fake.transcripts.append("stop")
    detection = TurnDetection(silence_duration_ms=100, interrupt_response=False)
    audio_in = AudioInput(transcription=InputAudioTranscription(), turn_detection=detection)
    settings = OpenAIRealtimeLLMService.Settings(
        system_instruction="Be brief.",
        session_properties=SessionProperties(audio=AudioConfiguration(input=audio_in)),
    )
    llm = OpenAIRealtimeLLMService(api_key="test-key", base_url=fake.base_url, settings=settings)

    async def lookup(params: FunctionCallParams) -> None:
        await params.result_callback({"found": True})

    llm.register_function("lookup", lookup)
    context = LLMContext(
        [{"role": "system", "content": "ignored"}, {"role": "user", "content": "Hi"}]
    )
    pcm = tone_pcm(0.1, RATE)
    frames = [
        LLMContextFrame(context),
        SleepFrame(5.0, until=lambda: len(fake.of_type("response.create")) >= 2),
        SleepFrame(
            5.0, until=lambda: len([e for e in fake.sent if "audio.delta" in e["type"]]) > 3
        ),
        InputAudioRawFrame(pcm[:320], RATE),
        InputAudioRawFrame(pcm[320:640], RATE),
        SleepFrame(5.0, until=lambda: bool(fake.of_type("conversation.item.truncate"))),
        SleepFrame(0.1),
    ]
    pipeline = Pipeline([InputSide(), LLMUserAggregator(context), llm, HeardReport()])
    await run_test(pipeline, frames, params=PipelineParams(audio_in_sample_rate=RATE))
    kinds = set()
    for event in fake.events:
        parsed = CLIENT_EVENT.validate_python(event)
        assert extras(parsed) == [], (event["type"], extras(parsed))
        kinds.add(event["type"])
    assert kinds >= {
        "session.update",
        "conversation.item.create",
        "response.create",
        "input_audio_buffer.append",
        "response.cancel",
        "conversation.item.truncate",
    }
    # The same handshake as the SDK's for this model.
    assert fake.paths == ["/v1/realtime?model=gpt-realtime"]
    assert check_server_events(fake)
    assert json.dumps(fake.of_type("session.update")[0]["session"]["instructions"]) == '"Be brief."'
