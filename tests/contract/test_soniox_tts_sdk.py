"""The official ``soniox`` SDK's real-time text-to-speech client against FakeSonioxTTSServer, and
our service's messages against the SDK's.

The SDK's single-stream and multiplexed connections talk to the fake; every message the fake
sends must validate as the SDK's ``RealtimeTTSEvent`` (its ``timestamps`` as ``TtsTimestamps``)
with no field the SDK does not model. Our service's stream configuration must be one the SDK's
``RealtimeTTSConfig`` builds (``client_reference_id``, which the SDK does not model, aside), its
text, cancel and keep-alive messages the SDK's, and its handshake must carry the key as the SDK
does.
"""

from __future__ import annotations

import json
from typing import Any

from soniox import AsyncSonioxClient
from soniox.types import RealtimeTTSConfig, RealtimeTTSEvent
from soniox.types.realtime import (
    RealtimeTTSCancelMessage,
    RealtimeTTSKeepAliveMessage,
    RealtimeTTSTextMessage,
    TtsTimestamps,
)
from tests.unit.services.helpers import barge_in

from callpipe.frames.frames import ErrorFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.soniox.tts import SONIOX_TTS_URL, SonioxTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.soniox import TTS_PATH, FakeSonioxTTSServer
from callpipe.testing.pipeline import SleepFrame

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


def client(fake: FakeSonioxTTSServer) -> AsyncSonioxClient:
    return AsyncSonioxClient(api_key="test-key", tts_websocket_base_url=fake.url + TTS_PATH)


def validate(message: dict[str, Any]) -> RealtimeTTSEvent:
    event = RealtimeTTSEvent.model_validate(message)
    assert set(message) <= set(RealtimeTTSEvent.model_fields), set(message)
    timestamps = message.get("timestamps")
    if timestamps is not None:
        TtsTimestamps.model_validate(timestamps)
        assert set(timestamps) <= set(TtsTimestamps.model_fields), set(timestamps)
    return event


async def test_sdk_streams_through_the_fake_and_accepts_every_message() -> None:
    async with FakeSonioxTTSServer() as fake:
        config = RealtimeTTSConfig(
            stream_id="stream-001",
            model="tts-rt-v1",
            language="en",
            voice="Adrian",
            audio_format="pcm_s16le",
            sample_rate=24000,
            return_timestamps=True,
        )
        async with client(fake).realtime.tts.connect(config=config) as session:
            await session.send_text_chunk("Hello from ")
            await session.send_text_chunks("the fake.", text_end=True)
            audio = b"".join([chunk async for chunk in session.receive_audio_chunks()])
        events = [validate(json.loads(json.dumps(m))) for m in fake.sent]
    assert len(audio) == 2 * int(0.1 * 24000) * 4  # four words of 0.1 s at 24 kHz
    assert events[-1].terminated and events[-2].audio_end
    chars = "".join(c for e in events if e.timestamps for c in e.timestamps.characters)
    assert chars == "Hello from the fake."
    assert fake.of("config") == [config.model_dump(exclude_none=True)]
    assert fake.headers[0]["authorization"] == "Bearer test-key"


async def test_sdk_multiplexed_streams_cancel_and_errors() -> None:
    async with FakeSonioxTTSServer() as fake:
        base = {"model": "tts-rt-v2", "language": "en", "voice": "Maya"}
        fmt = {"audio_format": "pcm_mulaw", "sample_rate": 8000}
        async with client(fake).realtime.tts.connect_multi_stream() as connection:
            one = await connection.open_stream(
                config=RealtimeTTSConfig(stream_id="one", **base, **fmt)
            )
            two = await connection.open_stream(
                config=RealtimeTTSConfig(stream_id="two", **base, **fmt)
            )
            await one.send_text_chunk("First stream.", text_end=True)
            await two.send_text_chunk("Second stream goes on ")
            await two.cancel()
            await connection.keep_alive()
            one_audio = b"".join([c async for c in one.receive_audio_chunks()])
            two_events = [e async for e in two.receive_events()]
            bad = await connection.open_stream(
                config=RealtimeTTSConfig(stream_id="bad", **(base | {"model": "nope"}), **fmt)
            )
            failure = await bad._connection._receive_event_for_stream("bad")
        for message in fake.sent:
            validate(json.loads(json.dumps(message)))
    assert len(one_audio) == int(0.1 * 8000) * 2  # two words of µ-law, a byte a sample
    assert two_events[-1].terminated
    assert failure is not None and failure.error_code == 400 and failure.error_message
    assert fake.of("cancel") == [RealtimeTTSCancelMessage(stream_id="two").model_dump()]
    assert fake.of("keep_alive") == [RealtimeTTSKeepAliveMessage().model_dump()]


async def test_our_messages_are_the_sdks(monkeypatch: Any) -> None:
    assert SONIOX_TTS_URL == "wss://tts-rt.soniox.com/tts-websocket"
    monkeypatch.setattr("callpipe.services.soniox.tts.KEEPALIVE_SECS", 0.05)
    async with FakeSonioxTTSServer(chunk_delay=0.02) as fake:
        settings = SonioxTTSService.Settings(
            voice="Adrian", speed=1.1, reduce_silence=True, client_reference_id="call-7"
        )
        tts = SonioxTTSService(api_key="test-key", url=fake.url, settings=settings)
        down, up = await run_test(
            tts, [TTSSpeakFrame("Hello there."), SleepFrame(0.2)], params=PHONE
        )
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        # 60 words, over 250 characters: sent before the sentence ends, then interrupted.
        await barge_in(SonioxTTSService(api_key="test-key", url=fake.url), params=PHONE, words=60)
        [config, *_] = fake.of("config")
        reference = config.pop("client_reference_id")
        assert reference == "call-7"
        assert config == RealtimeTTSConfig.model_validate(config).model_dump(exclude_none=True)
        for message in fake.of("text"):
            assert message == RealtimeTTSTextMessage.model_validate(message).model_dump()
        cancels = fake.of("cancel")
        assert cancels
        for message in cancels:
            assert message == RealtimeTTSCancelMessage.model_validate(message).model_dump()
        assert fake.of("keep_alive")[0] == RealtimeTTSKeepAliveMessage().model_dump()
        assert {h["authorization"] for h in fake.headers} == {"Bearer test-key"}
        for message in fake.sent:
            validate(json.loads(json.dumps(message)))
