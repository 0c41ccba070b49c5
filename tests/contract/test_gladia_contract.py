"""The official ``gladiaio-sdk`` live client against FakeGladiaServer, and our service's
session request against the SDK's.

The SDK's ``live_v2_async`` session starts a session over HTTP at the fake, streams µ-law audio
on the socket the fake returned and stops the recording; every message the fake sends must
parse as one of the SDK's typed messages with no field the SDK does not model. The session
request our service sends must be one the SDK's ``LiveV2InitRequest`` builds for the same
options, with the key in the header the SDK uses, and its control message the SDK's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from gladiaio_sdk import GladiaClient
from gladiaio_sdk.v2.live._helpers import build_init_body
from gladiaio_sdk.v2.live.generated_types import (
    LiveV2InitRequest,
    LiveV2UnknownWebSocketMessage,
    create_live_v2_web_socket_message_from_dict,
)

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import ErrorFrame, InputAudioRawFrame, TranscriptionFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.gladia.config import (
    CustomVocabularyConfig,
    CustomVocabularyItem,
    LanguageConfig,
    MessagesConfig,
    PreProcessingConfig,
    RealtimeProcessingConfig,
    TranslationConfig,
)
from callpipe.services.gladia.stt import GladiaSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.gladia import FakeGladiaServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

RATE = 8000


def unmodelled(value: Any, where: str = "") -> list[str]:
    """The fields of an SDK object (and of the objects in it) that the SDK does not model."""
    if isinstance(value, list):
        return [f for i, item in enumerate(value) for f in unmodelled(item, f"{where}[{i}]")]
    if not dataclasses.is_dataclass(value):
        return []
    found = [f"{where}.{name}" for name in getattr(value, "_unknown_fields", {})]
    for f in dataclasses.fields(value):
        if f.name != "_unknown_fields":
            found += unmodelled(getattr(value, f.name), f"{where}.{f.name}")
    return found


def without_nones(value: Any) -> Any:
    """``value`` with its None fields left out, in lists too (the SDK's ``to_dict`` leaves them
    in objects inside lists)."""
    if isinstance(value, dict):
        return {k: without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nones(v) for v in value]
    return value


def validate(message: dict[str, Any]) -> Any:
    parsed = create_live_v2_web_socket_message_from_dict(message)
    assert not isinstance(parsed, LiveV2UnknownWebSocketMessage), message["type"]
    assert unmodelled(parsed) == [], message
    assert without_nones(parsed.to_dict()) == message
    return parsed


async def test_sdk_session_through_the_fake_and_every_message_validates() -> None:
    async with FakeGladiaServer() as fake:
        fake.transcripts.extend(["hello there friend"])
        request = LiveV2InitRequest.from_dict(
            {
                "encoding": "wav/ulaw",
                "bit_depth": 8,
                "sample_rate": RATE,
                "channels": 1,
                "endpointing": 0.2,
                "language_config": {"languages": ["en"]},
                "messages_config": {
                    "receive_partial_transcripts": True,
                    "receive_lifecycle_events": True,
                },
            }
        )
        client = GladiaClient(api_key="test-key", api_url=fake.base_url).live_v2_async()
        session = client.start_session(request)
        messages: list[Any] = []
        errors: list[Exception] = []
        connected, ended = asyncio.Event(), asyncio.Event()
        session.on("message", messages.append)
        session.on("error", errors.append)
        session.on("connected", lambda _: connected.set())
        session.on("ended", lambda _: ended.set())
        await asyncio.wait_for(connected.wait(), 5)
        fake.error_next = "Invalid audio chunk"
        session.send_audio(b"\xff" * 160)
        audio = pcm_to_ulaw(tone_pcm(1.0, RATE)) + b"\xff" * 4000  # speech, then quiet
        for i in range(0, len(audio), 800):
            session.send_audio(audio[i : i + 800])
            await asyncio.sleep(0.005)
        for _ in range(200):
            if any(m.type == "transcript" and m.data.is_final for m in messages):
                break
            await asyncio.sleep(0.01)
        session.stop_recording()
        await asyncio.wait_for(ended.wait(), 5)
        for message in fake.sent:
            validate(message)
    assert errors == []
    kinds = {m["type"] for m in fake.sent}
    assert kinds >= {
        "audio_chunk",
        "start_recording",
        "speech_start",
        "speech_end",
        "transcript",
        "stop_recording",
        "end_recording",
        "post_transcript",
        "post_final_transcript",
        "end_session",
    }
    finals = [m for m in messages if m.type == "transcript" and m.data.is_final]
    assert [m.data.utterance.text for m in finals] == ["hello there friend"]
    assert any(m.type == "transcript" and not m.data.is_final for m in messages)
    refused = [m for m in fake.sent if m["type"] == "audio_chunk" and not m["acknowledged"]]
    assert refused and refused[0]["error"] == {"message": "Invalid audio chunk"}
    assert fake.inits == [build_init_body(request)]
    assert fake.init_headers[0]["x-gladia-key"] == "test-key"
    assert fake.controls == [{"type": "stop_recording"}]


async def test_our_session_request_is_the_sdks() -> None:
    settings = GladiaSTTService.Settings(
        language_config=LanguageConfig(languages=["en", "fr"], code_switching=True),
        custom_metadata={"call": "42"},
        endpointing=0.3,
        maximum_duration_without_endpointing=8,
        pre_processing=PreProcessingConfig(audio_enhancer=True, speech_threshold=0.7),
        realtime_processing=RealtimeProcessingConfig(
            custom_vocabulary=True,
            custom_vocabulary_config=CustomVocabularyConfig(
                vocabulary=["Invisalign", CustomVocabularyItem(value="Gladia", intensity=0.4)],
                default_intensity=0.5,
            ),
            translation=True,
            translation_config=TranslationConfig(target_languages=["de"], model="base"),
            named_entity_recognition=True,
        ),
        messages_config=MessagesConfig(receive_partial_transcripts=True),
    )
    async with FakeGladiaServer() as fake:
        fake.transcripts.append("bonjour")
        stt = GladiaSTTService(
            api_key="test-key", url=fake.base_url, region="eu-west", settings=settings
        )
        params = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
        pcm = tone_pcm(0.5, RATE)
        frames = [
            SleepFrame(5.0, until=lambda: fake.connections > 0),
            *[InputAudioRawFrame(pcm[i : i + 320], RATE) for i in range(0, len(pcm), 320)],
        ]
        down, up = await run_test(stt, frames, params=params)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["bonjour"]
    [ours] = fake.inits
    sdk = LiveV2InitRequest.from_dict(ours)
    assert unmodelled(sdk) == []  # every field one the SDK models
    assert without_nones(sdk.to_dict()) == ours  # ... and as the SDK would send it
    assert fake.init_headers[0]["x-gladia-key"] == "test-key"
    assert fake.init_queries == [{"region": "eu-west"}]  # where the SDK puts the region
    assert fake.controls == [{"type": "stop_recording"}]
