"""The official ``deepgram-sdk`` speak v1 client against FakeDeepgramTTSServer, and our requests
against what the SDK sends.

Every JSON message the fake sends must validate (strictly, not the SDK's lenient ``construct``)
as one of the SDK's ``speak.v1`` models; the SDK's own client must connect, speak, flush, clear
and receive through the fake; our service's query and messages must be the ones the SDK builds.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.speak.v1.types import (
    SpeakV1Cleared,
    SpeakV1Flushed,
    SpeakV1Metadata,
    SpeakV1Text,
    SpeakV1Warning,
)

from callpipe.frames.frames import Frame, InterruptionFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.deepgram.tts import DeepgramTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.deepgram_tts import FakeDeepgramTTSServer
from callpipe.testing.pipeline import SleepFrame

MODELS: dict[str, Any] = {
    "Metadata": SpeakV1Metadata,
    "Flushed": SpeakV1Flushed,
    "Cleared": SpeakV1Cleared,
    "Warning": SpeakV1Warning,
}
PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


def validate(message: dict[str, Any]) -> Any:
    return MODELS[message["type"]].model_validate(message)


def environment(fake: FakeDeepgramTTSServer) -> DeepgramClientEnvironment:
    http = fake.url.replace("ws://", "http://")
    return DeepgramClientEnvironment(
        base=http, production=fake.url, agent=fake.url, agent_rest=http
    )


async def test_sdk_speaks_through_the_fake_and_accepts_every_message() -> None:
    async with FakeDeepgramTTSServer(secs_per_word=0.05, flush_limit=2) as fake:
        client = AsyncDeepgramClient(api_key="test-key", environment=environment(fake))
        received: list[Any] = []
        async with client.speak.v1.connect(
            model="aura-2-thalia-en", encoding="mulaw", sample_rate="8000"
        ) as socket:
            received.append(await socket.recv())  # Metadata, on open
            await socket.send_text(SpeakV1Text(text="Hello from the SDK."))
            await socket.send_flush()
            while not isinstance(received[-1], SpeakV1Flushed):
                received.append(await socket.recv())
            await socket.send_text(SpeakV1Text(text="Cleared before it is spoken."))
            await socket.send_clear()
            received.append(await socket.recv())
            await socket.send_flush()  # the second of two allowed
            received.append(await socket.recv())
            await socket.send_flush()  # over the limit: a Warning
            received.append(await socket.recv())
            await socket.send_close()
    # (The SDK's lenient parse gives a Cleared message its Flushed class: same fields.)
    assert [m.type for m in received if not isinstance(m, bytes)] == [
        "Metadata",
        "Flushed",
        "Cleared",
        "Flushed",
        "Warning",
    ]
    audio = b"".join(m for m in received if isinstance(m, bytes))
    assert len(audio) == int(4 * 0.05 * 8000)  # 4 words of 8-bit mu-law at 8 kHz
    # sequence_id counts the answered Flush and Clear messages from 0.
    answers = [m for m in received if isinstance(m, SpeakV1Flushed | SpeakV1Cleared)]
    assert [m.sequence_id for m in answers] == [0, 1, 2]
    assert not [m for m in received if isinstance(m, dict)]  # nothing the SDK did not know
    assert fake.spoken == ["Hello from the SDK.", ""]
    for message in fake.sent:
        validate(message)


async def test_sdk_sees_the_fake_refuse_a_bad_key_and_a_bad_rate() -> None:
    from deepgram.core.api_error import ApiError

    async with FakeDeepgramTTSServer() as fake:
        client = AsyncDeepgramClient(api_key="wrong", environment=environment(fake))
        with pytest.raises(ApiError) as caught:
            async with client.speak.v1.connect(model="aura-2-thalia-en"):
                pass
        assert caught.value.status_code == 401
        client = AsyncDeepgramClient(api_key="test-key", environment=environment(fake))
        with pytest.raises(ApiError) as caught:
            async with client.speak.v1.connect(encoding="mulaw", sample_rate="24000"):
                pass
        assert caught.value.status_code == 400


async def test_our_query_and_messages_are_the_ones_the_sdk_builds() -> None:
    """The same request through our service and through the SDK: the fake sees the same."""
    async with FakeDeepgramTTSServer(secs_per_word=0.05, chunk_delay=0.01) as fake:
        tts = DeepgramTTSService(
            api_key="test-key",
            base_url=fake.url,
            mip_opt_out=True,
            settings=DeepgramTTSService.Settings(voice="aura-2-thalia-en", speed=0.9),
        )
        frames: list[Frame] = [
            SleepFrame(0.1),
            TTSSpeakFrame("One two three four five six seven eight."),
            SleepFrame(0.1),
            InterruptionFrame(),
            SleepFrame(0.2),
        ]
        await run_test(tts, frames, params=PARAMS)
        ours = parse_qs(urlsplit(fake.paths[0]).query)
        our_messages = list(fake.messages)
        fake.messages.clear()

        client = AsyncDeepgramClient(api_key="test-key", environment=environment(fake))
        async with client.speak.v1.connect(**{k: v[-1] for k, v in ours.items()}) as socket:  # type: ignore[arg-type]
            await socket.send_text(SpeakV1Text(text=our_messages[0]["text"]))
            await socket.send_flush()
            await socket.send_clear()
            await socket.send_close()
            while True:
                try:
                    await socket.recv()
                except Exception:
                    break
    theirs = parse_qs(urlsplit(fake.paths[-1]).query)
    assert ours == theirs
    assert ours["mip_opt_out"] == ["true"] and ours["speed"] == ["0.9"]
    assert [m["type"] for m in our_messages] == ["Speak", "Flush", "Clear", "Close"]
    assert our_messages == fake.messages
