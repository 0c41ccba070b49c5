"""The official ``camb-sdk``'s ``text_to_speech.tts`` against FakeCambServer, and CambTTSService's
request against the SDK's (Pipecat 1.14 sends its requests through this very call).

The SDK posts ``<base>/tts-stream`` with ``x-api-key``; the fake must take its body and stream
the raw PCM, refuse a wrong key and answer a bad body with the 422 validation error the SDK
parses. Our service's body must be the one the SDK builds for the same options.
"""

from __future__ import annotations

import pytest
from camb.client import AsyncCambAI
from camb.core.api_error import ApiError
from camb.errors import UnprocessableEntityError
from camb.types import StreamTtsOutputConfiguration

from callpipe.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.camb.tts import CambTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.camb import FakeCambServer

PCM = StreamTtsOutputConfiguration(format="pcm_s16le")
WIDE = PipelineParams(audio_in_sample_rate=22050, audio_out_sample_rate=22050)
NO_RETRY = {"max_retries": 0}


def client(fake: FakeCambServer, key: str = "test-key") -> AsyncCambAI:
    return AsyncCambAI(api_key=key, base_url=fake.base_url, timeout=10)


async def sdk_audio(sdk: AsyncCambAI, **kwargs: object) -> bytes:
    chunks = [chunk async for chunk in sdk.text_to_speech.tts(**kwargs)]  # type: ignore[arg-type]
    return b"".join(chunks)


async def test_sdk_streams_audio_from_the_fake() -> None:
    async with FakeCambServer(secs_per_word=0.1) as fake:
        audio = await sdk_audio(
            client(fake),
            text="Hello from the SDK.",
            language="en-us",
            voice_id=147320,
            speech_model="mars-flash",
            output_configuration=PCM,
        )
    assert fake.headers[0]["x-api-key"] == "test-key"
    assert len(audio) == 2 * int(4 * 0.1 * 22050)  # four words of 16-bit PCM at 22050 Hz


async def test_sdk_sees_a_bad_key_and_a_bad_body_refused() -> None:
    async with FakeCambServer() as fake:
        with pytest.raises(ApiError) as refused:
            await sdk_audio(
                client(fake, "wrong"),
                text="Hello.",
                language="en-us",
                voice_id=1,
                request_options=NO_RETRY,
            )
        assert refused.value.status_code == 401
        with pytest.raises(UnprocessableEntityError) as invalid:
            await sdk_audio(
                client(fake), text="Hi", language="en-us", voice_id=1, request_options=NO_RETRY
            )
    assert invalid.value.body.detail  # the SDK parsed the fake's validation error


@pytest.mark.parametrize(
    ("settings", "sdk_options"),
    [
        (
            CambTTSService.Settings(voice=12345, model="mars-pro", language="es-MX"),
            {"voice_id": 12345, "speech_model": "mars-pro", "language": "es-mx"},
        ),
        (
            CambTTSService.Settings(model="mars-instruct", user_instructions="Calm."),
            {
                "voice_id": 147320,
                "speech_model": "mars-instruct",
                "language": "en-us",
                "user_instructions": "Calm.",
            },
        ),
    ],
)
async def test_our_request_is_the_sdks(
    settings: CambTTSService.Settings, sdk_options: dict[str, object]
) -> None:
    text = "Hola, buenos días."
    async with FakeCambServer() as fake:
        ours = CambTTSService(api_key="test-key", base_url=fake.base_url, settings=settings)
        _, up = await run_test(ours, [TTSSpeakFrame(text)], params=WIDE)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        await sdk_audio(client(fake), text=text, output_configuration=PCM, **sdk_options)
    ours_body, sdk_body = fake.requests
    assert ours_body == sdk_body
    assert fake.headers[0]["x-api-key"] == fake.headers[1]["x-api-key"] == "test-key"


async def test_the_audio_our_service_plays_is_what_the_sdk_gets() -> None:
    async with FakeCambServer(secs_per_word=0.1) as fake:
        ours = CambTTSService(api_key="test-key", base_url=fake.base_url)
        down, _ = await run_test(ours, [TTSSpeakFrame("One two three.")], params=WIDE)
        audio = await sdk_audio(
            client(fake),
            text="One two three.",
            language="en-us",
            voice_id=147320,
            speech_model="mars-flash",
            output_configuration=PCM,
        )
    # At the model's own rate nothing is resampled: the bytes are the SDK's.
    played = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert played == audio
