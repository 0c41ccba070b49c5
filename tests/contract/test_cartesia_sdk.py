"""The official ``cartesia`` SDK against FakeCartesiaServer, and our requests against its models.

The SDK authenticates with ``Authorization: Bearer`` and a ``cartesia-version`` header: the fake
must accept it (it refused the SDK with 401 while it only knew ``X-API-Key``). Every message
the fake sends must validate strictly as the SDK's ``WebsocketResponse`` union, and every
request our service sends must validate as the SDK's ``WebsocketClientEventParam``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cartesia import AsyncCartesia
from cartesia.types.generation_request_param import GenerationRequestParam
from cartesia.types.websocket_client_event_param import (
    CancelContextRequest,
)
from cartesia.types.websocket_response import WebsocketResponse
from pydantic import TypeAdapter

from callpipe.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeCartesiaServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

from .replay import ReplayServer

RESPONSE = TypeAdapter(WebsocketResponse)
GENERATION = TypeAdapter(GenerationRequestParam)
CANCEL = TypeAdapter(CancelContextRequest)
PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


def client(fake: FakeCartesiaServer, key: str = "test-key") -> AsyncCartesia:
    return AsyncCartesia(
        api_key=key,
        base_url=fake.url.replace("ws://", "http://"),
        websocket_base_url=fake.url,
        max_retries=0,
    )


async def test_sdk_generates_through_the_fake_and_validates_every_message() -> None:
    async with FakeCartesiaServer() as fake:
        raw: list[Any] = []
        async with client(fake).tts.websocket_connect() as connection:
            await connection.send(
                {
                    "model_id": "sonic-3",
                    "transcript": "Hello from the SDK.",
                    "voice": {"mode": "id", "id": "voice-1"},
                    "context_id": "sdk-ctx",
                    "output_format": {
                        "container": "raw",
                        "encoding": "pcm_s16le",
                        "sample_rate": 8000,
                    },
                    "add_timestamps": True,
                    "continue": False,
                }
            )
            while True:
                data = await connection.recv_bytes(timeout=5.0)
                message = json.loads(data)
                raw.append(message)
                if message.get("done") and message.get("type") in ("done", "error"):
                    break
    assert fake.auth_used == ["header:Authorization"]
    assert fake.versions and fake.versions[0]
    kinds = [RESPONSE.validate_python(m).type for m in raw]
    assert kinds[0] == "timestamps" and "chunk" in kinds and kinds[-1] == "done"


async def test_sdk_sees_a_bad_key_refused() -> None:
    async with FakeCartesiaServer() as fake:
        with pytest.raises(Exception) as caught:
            async with client(fake, "wrong").tts.websocket_connect():
                pass
    assert "401" in str(caught.value)
    assert fake.rejected == 1


@pytest.mark.parametrize("model", ["sonic-2", "sonic-3"])
async def test_our_requests_validate_as_the_sdk_request_models(model: str) -> None:
    params = CartesiaTTSService.InputParams(speed=1.1, emotion=["positivity"], volume=1.2)
    async with FakeCartesiaServer(secs_per_word=0.05, chunk_delay=0.01) as fake:
        tts = CartesiaTTSService(
            api_key="test-key", voice_id="v", url=fake.url, model=model, params=params
        )
        from callpipe.frames.frames import (
            LLMFullResponseEndFrame,
            LLMFullResponseStartFrame,
            LLMTextFrame,
        )

        frames = [
            LLMFullResponseStartFrame(),
            LLMTextFrame("One two three four five six seven. And"),
            SleepFrame(0.1),
            InterruptionFrame(),
            SleepFrame(0.1),
            LLMFullResponseStartFrame(),
            LLMTextFrame("Fresh."),
            LLMFullResponseEndFrame(),
        ]
        _, up = await run_test(tts, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert fake.errors == []
    generation = [m for m in fake.messages if "cancel" not in m]
    cancels = [m for m in fake.messages if "cancel" in m]
    assert generation and cancels
    for message in generation:
        GENERATION.validate_python(message)
        # The SDK's models: generation_config is for sonic-3; sonic-2 keeps voice controls.
        assert ("generation_config" in message) == model.startswith("sonic-3")
    for message in cancels:
        CANCEL.validate_python(message)


def fixture_messages(context_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    audio = base64.b64encode(tone_pcm(0.1, 8000)).decode()
    text = (Path(__file__).parent / "fixtures" / "cartesia_messages.json").read_text()
    text = text.replace("{context_id}", context_id).replace("{audio_0.1s}", audio)
    data = json.loads(text)
    return data["messages"], data["error"]


async def test_documented_messages_replay_through_our_client() -> None:
    async def script(request: dict[str, Any]) -> list[dict[str, Any]]:
        if request.get("transcript", "").strip():
            messages, _ = fixture_messages(request["context_id"])
            return messages
        return []

    async with ReplayServer(script) as server:
        tts = CartesiaTTSService(api_key="k", voice_id="v", url=server.url, encoding="pcm_s16le")
        from .replay import reply

        down, up = await run_test(tts, reply("Hello, caller."), params=PARAMS)
    for message in fixture_messages("x")[0]:
        RESPONSE.validate_python(message)
    RESPONSE.validate_python(fixture_messages("x")[1])
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Hello,", "caller."]
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert sum(len(f.audio) for f in audio) == 2 * int(0.1 * 8000) * 2
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 1


async def test_documented_error_replays_as_an_error_frame() -> None:
    async def script(request: dict[str, Any]) -> list[dict[str, Any]]:
        return [fixture_messages(request["context_id"])[1]]

    async with ReplayServer(script) as server:
        tts = CartesiaTTSService(api_key="k", voice_id="v", url=server.url)
        from .replay import reply

        down, up = await run_test(tts, reply("Hello."), params=PARAMS)
    [error] = [f for f in up if isinstance(f, ErrorFrame)]
    assert "Invalid voice: The voice id does not exist." in error.error
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 1
