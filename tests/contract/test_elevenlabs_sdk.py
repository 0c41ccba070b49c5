"""Our ElevenLabs client and FakeElevenLabsServer against the official ``elevenlabs`` SDK's models.

The SDK (2.x) ships models for the multi-context WebSocket but only a client for the
single-context ``stream-input`` endpoint (fixed to ``wss://``), so the check is: every message
our service sends is exactly one of the SDK's client message models (no field outside it), and
every message the fake sends validates as the SDK's server message models. The documented
server messages are replayed through our client.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from elevenlabs.types import (
    CloseContext,
    CloseSocket,
    FinalOutputMulti,
    FlushContext,
    InitialiseContext,
    KeepContextAlive,
    SendTextMulti,
    WebsocketTtsServerMessageMulti,
)

from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeElevenLabsServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

from .replay import ReplayServer, reply

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
CLIENT_MODELS: list[Any] = [  # most specific first
    KeepContextAlive,
    CloseContext,
    FlushContext,
    CloseSocket,
    SendTextMulti,
    InitialiseContext,
]


def sdk_client_model(message: dict[str, Any]) -> str:
    """The SDK client message model ``message`` is exactly (all its keys are model fields)."""
    for model in CLIENT_MODELS:
        fields = {f.alias or name for name, f in model.model_fields.items()}
        if set(message) <= fields:
            try:
                model.model_validate(message)
            except Exception:
                continue
            return str(model.__name__)
    raise AssertionError(f"not an SDK client message: {message}")


def check_server_message(message: dict[str, Any]) -> None:
    if message.get("isFinal") is True or message.get("is_final") is True:
        FinalOutputMulti.model_validate(message)
    else:
        parsed = WebsocketTtsServerMessageMulti.model_validate(message)
        assert parsed.context_id and parsed.audio and parsed.alignment is not None


async def test_our_messages_are_sdk_client_messages_and_the_fake_answers_in_sdk_shapes() -> None:
    params = ElevenLabsTTSService.InputParams(stability=0.4, speed=1.05, enable_logging=False)
    async with FakeElevenLabsServer(chunk_delay=0.01) as fake:
        sent: list[dict[str, Any]] = []
        tts = ElevenLabsTTSService(
            api_key="test-key", voice_id="voice-1", url=fake.url, params=params, keepalive_secs=0.1
        )
        frames: list[Frame] = [
            LLMFullResponseStartFrame(),
            LLMTextFrame("One two three four five. And"),
            SleepFrame(0.3),
            InterruptionFrame(),
            *reply("Fresh start."),
            SleepFrame(0.3),
        ]
        _, up = await run_test(tts, frames, params=PARAMS)
        sent = list(fake.messages)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    kinds = {sdk_client_model(m) for m in sent}
    assert {"InitialiseContext", "SendTextMulti", "CloseContext", "KeepContextAlive"} <= kinds
    assert fake.queries[0]["enable_logging"] == ["false"]


async def test_fake_server_messages_validate_as_sdk_models() -> None:
    async with FakeElevenLabsServer() as fake:
        seen: list[dict[str, Any]] = []
        from websockets.asyncio.client import connect

        url = f"{fake.url}/v1/text-to-speech/v/multi-stream-input?model_id=m&output_format=pcm_8000"
        async with connect(url, additional_headers={"xi-api-key": "test-key"}) as ws:
            await ws.send(json.dumps({"text": " ", "context_id": "c1"}))
            await ws.send(json.dumps({"text": "Hello there. ", "context_id": "c1", "flush": True}))
            await ws.send(json.dumps({"context_id": "c1", "close_context": True}))
            async for raw in ws:
                message = json.loads(raw)
                seen.append(message)
                if message.get("isFinal"):
                    break
    assert len(seen) >= 2
    for message in seen:
        check_server_message(message)


async def test_documented_messages_replay_through_our_client() -> None:
    audio = base64.b64encode(tone_pcm(0.1, 8000)).decode()
    template = (Path(__file__).parent / "fixtures" / "elevenlabs_messages.json").read_text()

    def messages(context_id: str) -> list[dict[str, Any]]:
        text = template.replace("{context_id}", context_id).replace("{audio_0.1s}", audio)
        return list(json.loads(text)["messages"])

    async def script(request: dict[str, Any]) -> list[dict[str, Any]]:
        return messages(request["context_id"]) if request.get("close_context") else []

    for message in messages("x"):
        check_server_message(message)
    async with ReplayServer(script) as server:
        tts = ElevenLabsTTSService(api_key="k", voice_id="v", url=server.url, encoding="pcm")
        down, up = await run_test(tts, reply("Hi there."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Hi", "there."]
    assert sum(len(f.audio) for f in down if isinstance(f, TTSAudioRawFrame)) == 1600
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 1
    _ = LLMFullResponseEndFrame  # the reply helper closes the response
