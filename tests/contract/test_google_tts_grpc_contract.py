"""The official ``google-cloud-texttospeech`` SDK (its gRPC asyncio transport) against
FakeGoogleTTSGrpcServer, and GoogleTTSService's / GeminiTTSService's requests against the SDK's.

The SDK's ``TextToSpeechAsyncClient`` is given an insecure channel to the fake and streams as
Google's streaming guide shows (a ``streaming_config`` request, then ``input`` requests); every
response the fake sent must parse as the SDK's ``StreamingSynthesizeResponse`` with no field
the SDK lacks. The fake's refusals reach the SDK as Google's status codes. Our services' first
request is, byte for byte, the one the SDK builds from the same settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import texttospeech_v1 as tts
from google.cloud.texttospeech_v1.services.text_to_speech.transports import (
    TextToSpeechGrpcAsyncIOTransport,
)
from google.protobuf.unknown_fields import UnknownFieldSet

from callpipe.frames.frames import ErrorFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.google.tts import GeminiTTSService, GoogleTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.google_tts_grpc import FakeGoogleTTSGrpcServer

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
VOICE = "en-US-Chirp3-HD-Charon"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGoogleTTSGrpcServer]:
    async with FakeGoogleTTSGrpcServer(secs_per_word=0.1, chunk_secs=0.05) as server:
        monkeypatch.setenv("CALLPIPE_GOOGLE_TTS_GRPC_URL", server.url)
        yield server


def sdk_client(fake: FakeGoogleTTSGrpcServer) -> tts.TextToSpeechAsyncClient:
    channel = grpc.aio.insecure_channel(fake.address)
    return tts.TextToSpeechAsyncClient(transport=TextToSpeechGrpcAsyncIOTransport(channel=channel))


def config(
    *,
    voice: tts.VoiceSelectionParams | None = None,
    encoding: tts.AudioEncoding = tts.AudioEncoding.PCM,
    rate: int = 8000,
) -> tts.StreamingSynthesizeConfig:
    return tts.StreamingSynthesizeConfig(
        voice=voice or tts.VoiceSelectionParams(language_code="en-US", name=VOICE),
        streaming_audio_config=tts.StreamingAudioConfig(
            audio_encoding=encoding, sample_rate_hertz=rate
        ),
    )


async def stream(
    fake: FakeGoogleTTSGrpcServer, requests: Iterable[tts.StreamingSynthesizeRequest]
) -> bytes:
    """The SDK's ``streaming_synthesize`` over ``requests``; the audio it got."""

    async def requests_in_order() -> AsyncIterator[tts.StreamingSynthesizeRequest]:
        for request in requests:
            yield request

    client = sdk_client(fake)
    try:
        responses = await client.streaming_synthesize(requests=requests_in_order())
        return b"".join([r.audio_content async for r in responses])
    finally:
        await client.transport.close()


def check_responses(fake: FakeGoogleTTSGrpcServer) -> None:
    """Every response the fake sent is the SDK's message, with no field it does not know."""
    assert fake.responses
    for raw in fake.responses:
        message = tts.StreamingSynthesizeResponse.pb().FromString(raw)
        assert len(UnknownFieldSet(message)) == 0
        assert message.audio_content


async def test_sdk_streams_text_as_googles_guide_shows(fake: FakeGoogleTTSGrpcServer) -> None:
    audio = await stream(
        fake,
        [
            tts.StreamingSynthesizeRequest(streaming_config=config()),
            tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text="Hello there, ")),
            tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text="from the SDK.")),
        ],
    )
    check_responses(fake)
    assert len(audio) == 5 * 800 * 2  # five words of 0.1 s, 16-bit at 8 kHz, no header
    assert len(fake.responses) > 2  # the audio came in several chunks


@pytest.mark.parametrize("encoding", [tts.AudioEncoding.MULAW, tts.AudioEncoding.ALAW])
async def test_g711_streams_one_byte_per_sample(
    fake: FakeGoogleTTSGrpcServer, encoding: tts.AudioEncoding
) -> None:
    audio = await stream(
        fake,
        [
            tts.StreamingSynthesizeRequest(streaming_config=config(encoding=encoding)),
            tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text="One two.")),
        ],
    )
    check_responses(fake)
    assert len(audio) == 2 * 800


@pytest.mark.parametrize(
    "requests",
    [
        pytest.param(
            [tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text="Hi."))],
            id="input first",
        ),
        pytest.param(
            [
                tts.StreamingSynthesizeRequest(streaming_config=config()),
                tts.StreamingSynthesizeRequest(streaming_config=config()),
            ],
            id="config twice",
        ),
        pytest.param(
            [
                tts.StreamingSynthesizeRequest(
                    streaming_config=config(encoding=tts.AudioEncoding.LINEAR16)
                )
            ],
            id="an encoding streaming lacks",
        ),
        pytest.param(
            [
                tts.StreamingSynthesizeRequest(
                    streaming_config=config(
                        voice=tts.VoiceSelectionParams(
                            language_code="en-US", name="en-US-Neural2-F"
                        )
                    )
                )
            ],
            id="a voice that does not stream",
        ),
        pytest.param(
            [
                tts.StreamingSynthesizeRequest(streaming_config=config()),
                tts.StreamingSynthesizeRequest(
                    input=tts.StreamingSynthesisInput(text="Hi.", prompt="Warmly.")
                ),
            ],
            id="a prompt without a Gemini model",
        ),
    ],
)
async def test_sdk_gets_invalid_argument_for_what_google_refuses(
    fake: FakeGoogleTTSGrpcServer, requests: list[tts.StreamingSynthesizeRequest]
) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        await stream(fake, requests)


async def test_sdk_without_the_token_gets_unauthenticated(fake: FakeGoogleTTSGrpcServer) -> None:
    fake.token = "secret"
    with pytest.raises(exceptions.Unauthenticated):
        await stream(
            fake,
            [
                tts.StreamingSynthesizeRequest(streaming_config=config()),
                tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text="Hi.")),
            ],
        )


async def test_google_tts_service_sends_the_sdks_first_request(
    fake: FakeGoogleTTSGrpcServer,
) -> None:
    settings = GoogleTTSService.Settings(voice=VOICE, language="en-US", speaking_rate=1.25)
    _, up = await run_test(
        GoogleTTSService(settings=settings), [TTSSpeakFrame("Hi there.")], params=PHONE
    )
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    sdk_config = config()
    sdk_config.streaming_audio_config.speaking_rate = 1.25
    expected = tts.StreamingSynthesizeRequest(streaming_config=sdk_config)
    assert fake.first_request_bytes == [tts.StreamingSynthesizeRequest.serialize(expected)]
    assert [tts.StreamingSynthesisInput.serialize(i) for i in fake.inputs] == [
        tts.StreamingSynthesisInput.serialize(tts.StreamingSynthesisInput(text="Hi there."))
    ]
    check_responses(fake)


async def test_gemini_tts_service_sends_the_sdks_requests(fake: FakeGoogleTTSGrpcServer) -> None:
    settings = GeminiTTSService.Settings(
        model="gemini-2.5-flash-tts", voice="Kore", language="en-US", prompt="Cheerfully."
    )
    _, up = await run_test(
        GeminiTTSService(settings=settings), [TTSSpeakFrame("Hello.")], params=PHONE
    )
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    expected = tts.StreamingSynthesizeRequest(
        streaming_config=config(
            voice=tts.VoiceSelectionParams(
                language_code="en-US", name="Kore", model_name="gemini-2.5-flash-tts"
            )
        )
    )
    assert fake.first_request_bytes == [tts.StreamingSynthesizeRequest.serialize(expected)]
    sent = tts.StreamingSynthesisInput(text="Hello.", prompt="Cheerfully.")
    assert [tts.StreamingSynthesisInput.serialize(i) for i in fake.inputs] == [
        tts.StreamingSynthesisInput.serialize(sent)
    ]
