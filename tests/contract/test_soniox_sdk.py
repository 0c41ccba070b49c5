"""The official ``soniox`` SDK's real-time client against FakeSonioxServer, and our service's
messages against the SDK's.

The SDK's ``AsyncSonioxClient.realtime.stt`` session connects to the fake, streams audio,
finalizes and finishes; every result the fake sends must validate as the SDK's
``RealtimeEvent`` (and its tokens as ``Token``) with no field the SDK does not model. Our
service's start message must be one the SDK's ``RealtimeSTTConfig`` builds for the same options,
its handshake must carry the key as the SDK does, and its control messages must be the SDK's.
"""

from __future__ import annotations

import json
from typing import Any

from soniox import AsyncSonioxClient
from soniox.types import RealtimeEvent, RealtimeSTTConfig, Token

from callpipe.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    STTMuteFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.soniox.stt import (
    SonioxContextGeneralItem,
    SonioxContextObject,
    SonioxSTTService,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.soniox import PATH, FakeSonioxServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

RATE = 16000


def client(fake: FakeSonioxServer) -> AsyncSonioxClient:
    return AsyncSonioxClient(api_key="test-key", websocket_base_url=fake.url + PATH)


def validate(message: dict[str, Any]) -> RealtimeEvent:
    event = RealtimeEvent.model_validate(message)
    assert set(message) <= set(RealtimeEvent.model_fields), set(message)
    for token in message["tokens"]:
        Token.model_validate(token)
        assert set(token) <= set(Token.model_fields), set(token)
    return event


async def test_sdk_streams_through_the_fake_and_validates_every_result() -> None:
    async with FakeSonioxServer() as fake:
        fake.transcripts.extend(["first turn", "last words"])
        config = RealtimeSTTConfig(
            model="stt-rt-v5",
            audio_format="pcm_s16le",
            sample_rate=RATE,
            num_channels=1,
            language_hints=["en"],
            enable_language_identification=True,
            enable_speaker_diarization=True,
        )
        events: list[RealtimeEvent] = []
        async with client(fake).realtime.stt.connect(config=config) as session:
            await session.send_bytes(tone_pcm(0.6, RATE))
            await session.finalize()
            async for event in session.receive_events():
                events.append(event)
                if any(t.text == "<fin>" for t in event.tokens):
                    break
            await session.keep_alive()
            await session.send_bytes(tone_pcm(0.4, RATE))
            await session.finish()
            events.extend([event async for event in session.receive_events()])
        for message in fake.sent:  # as sent on the wire
            validate(json.loads(json.dumps(message)))
    assert events[-1].finished
    finals = "".join(t.text for e in events for t in e.tokens if t.is_final)
    assert finals == "first turn<fin>last words"
    assert {t.language for e in events for t in e.tokens if t.is_final and t.start_ms} == {"en"}
    assert fake.configs[0] == config.model_dump(exclude_none=True)
    assert fake.headers[0]["authorization"] == "Bearer test-key"
    assert fake.controls == [
        json.dumps({"type": "finalize"}),
        json.dumps({"type": "keepalive"}),
        "",
    ]


async def test_error_results_validate_as_the_sdk_event() -> None:
    async with FakeSonioxServer(api_key="other-key") as fake:
        config = RealtimeSTTConfig(
            model="stt-rt-v5", audio_format="mulaw", sample_rate=8000, num_channels=1
        )
        async with client(fake).realtime.stt.connect(config=config) as session:
            event = await session.receive_event()
    assert event is not None and event.error_code == 401 and event.error_message
    validate(fake.sent[0])


async def test_our_messages_are_the_sdks() -> None:
    settings = SonioxSTTService.Settings(
        language_hints=[Language.EN_US, Language.FR],
        language_hints_strict=True,
        context=SonioxContextObject(
            general=[SonioxContextGeneralItem(key="domain", value="dentist")],
            text="A booking call",
            terms=["Invisalign"],
        ),
        enable_speaker_diarization=True,
        enable_language_identification=True,
        max_endpoint_delay_ms=900,
        endpoint_sensitivity=0.2,
        endpoint_latency_adjustment_level=1,
        client_reference_id="call-42",
    )
    for vad_force_turn_endpoint in (True, False):
        async with FakeSonioxServer() as fake:
            stt = SonioxSTTService(
                api_key="test-key",
                url=fake.url,
                settings=settings,
                vad_force_turn_endpoint=vad_force_turn_endpoint,
            )
            stt.keepalive_secs = 0.05
            params = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
            frames = [
                SleepFrame(2.0, until=lambda: fake.configs != []),
                InputAudioRawFrame(tone_pcm(0.3, RATE), RATE),
                UserStoppedSpeakingFrame(),
                STTMuteFrame(mute=True),
                SleepFrame(2.0, until=lambda: json.dumps({"type": "keepalive"}) in fake.controls),
            ]
            _, up = await run_test(stt, frames, params=params)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        [ours] = fake.configs
        sdk = RealtimeSTTConfig.model_validate(ours).model_dump(exclude_none=True)
        assert ours == sdk  # every field one the SDK models, as it would send it
        assert "api_key" not in ours  # the key travels in the handshake, as the SDK sends it
        assert fake.headers[0]["authorization"] == "Bearer test-key"
        assert set(fake.controls) <= {
            json.dumps({"type": "finalize"}),
            json.dumps({"type": "keepalive"}),
            "",
        }
        assert fake.controls[-1] == ""
        assert (json.dumps({"type": "finalize"}) in fake.controls) is vad_force_turn_endpoint
