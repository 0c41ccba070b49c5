"""The official ``cartesia`` SDK's STT client against FakeCartesiaSTTServer, and our service's
socket against the SDK's.

The SDK's ``stt.manual_finalize`` client connects to the fake; every message the fake sends
must validate as the SDK's ``STTManualFinalizeWebsocketResponse`` union, and the query and auth
headers our service opens its socket with must be those the SDK builds for the same options.
"""

from __future__ import annotations

import json
from typing import Any

from cartesia import AsyncCartesia
from cartesia.types.stt.stt_manual_finalize_websocket_response import (
    STTManualFinalizeWebsocketResponse,
)
from pydantic import TypeAdapter

from callpipe.frames.frames import ErrorFrame, InputAudioRawFrame, UserStoppedSpeakingFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.cartesia.stt import CartesiaSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaSTTServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

RESPONSE: TypeAdapter[Any] = TypeAdapter(STTManualFinalizeWebsocketResponse)
RATE = 16000


def client(fake: FakeCartesiaSTTServer) -> AsyncCartesia:
    return AsyncCartesia(
        api_key="test-key",
        base_url=fake.url.replace("ws://", "http://"),
        websocket_base_url=fake.url,
        max_retries=0,
    )


async def test_sdk_transcribes_through_the_fake_and_validates_every_message() -> None:
    async with FakeCartesiaSTTServer() as fake:
        fake.transcripts.extend(["first turn", "last words"])
        received: list[Any] = []
        connection_manager = client(fake).stt.manual_finalize.websocket(
            model="ink-whisper", encoding="pcm_s16le", sample_rate=RATE, language="en"
        )
        async with connection_manager as connection:
            await connection.send_raw(tone_pcm(0.6, RATE))
            await connection.send("finalize")
            while not received or received[-1].type != "flush_done":
                received.append(await connection.recv())
            await connection.send_raw(tone_pcm(0.3, RATE))
            await connection.send("close")
            while received[-1].type != "done":
                received.append(await connection.recv())
        for message in fake.sent:  # strictly, as sent on the wire
            RESPONSE.validate_json(json.dumps(message), strict=True)
    kinds = [m.type for m in received]
    assert kinds.count("flush_done") == 1 and kinds[-1] == "done"
    finals = [m.text for m in received if m.type == "transcript" and m.is_final]
    assert finals == ["first turn", "last words"]
    assert fake.auth_used == ["header:Authorization"]


async def test_error_messages_validate_as_the_sdk_error_model() -> None:
    async with FakeCartesiaSTTServer() as fake:
        fake.error_next = "bad audio"
        connection_manager = client(fake).stt.manual_finalize.websocket(
            model="ink-whisper", encoding="pcm_s16le", sample_rate=RATE
        )
        async with connection_manager as connection:
            await connection.send_raw(b"\x00\x00")
            message = await connection.recv()
    assert message.type == "error" and message.message == "bad audio"


async def test_our_socket_is_the_one_the_sdk_opens() -> None:
    async with FakeCartesiaSTTServer() as fake:
        connection_manager = client(fake).stt.manual_finalize.websocket(
            model="ink-2",
            encoding="pcm_s16le",
            sample_rate=RATE,
            language="en",
            keyterm=["New York", "callpipe"],
        )
        async with connection_manager:
            pass
        settings = CartesiaSTTService.Settings(model="ink-2", keyterm=["New York", "callpipe"])
        stt = CartesiaSTTService(api_key="test-key", base_url=fake.url, settings=settings)
        params = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
        frames = [
            SleepFrame(0.1),
            InputAudioRawFrame(tone_pcm(0.3, RATE), RATE),
            UserStoppedSpeakingFrame(),
            SleepFrame(2.0, until=lambda: "finalize" in fake.commands),
        ]
        _, up = await run_test(stt, frames, params=params)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    sdk, ours = fake.queries
    assert ours == sdk
    assert fake.headers[1]["authorization"] == fake.headers[0]["authorization"]
    # A dated API version, as the SDK sends (ours is Pipecat 1.14's, the TTS service's too).
    assert fake.headers[0]["cartesia-version"] and fake.headers[1]["cartesia-version"]
    # The text commands are the SDK's STTManualFinalizeWebsocketRequest values.
    assert set(fake.commands) <= {"finalize", "close"}
    assert fake.commands[-1] == "close"
