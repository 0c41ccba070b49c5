"""The official ``google-cloud-speech`` SDK (v2, gRPC asyncio transport) against
FakeGoogleSpeechServer, and GoogleSTTService's first request against the SDK's.

The SDK's ``SpeechAsyncClient`` is given an insecure channel to the fake and streams as Google's
streaming guide shows: a request with the ``recognizer`` and the ``streaming_config``, then
requests holding only ``audio``. Every response must come back through the SDK as its
``StreamingRecognizeResponse`` with no field the SDK lacks, and the fake's refusals of what the
API reference forbids (audio in the first request, a configuration in a later one, more than
15 KB of audio in one request) reach the SDK as ``INVALID_ARGUMENT``. Our service's first
request is, byte for byte, the one the SDK builds from the same settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

pytest.importorskip("google.cloud.speech_v2")

import grpc
from google.api_core import exceptions
from google.cloud import speech_v2
from google.cloud.speech_v2.services.speech.transports import SpeechGrpcAsyncIOTransport
from google.cloud.speech_v2.types import cloud_speech
from google.protobuf.unknown_fields import UnknownFieldSet
from tests.unit.services.helpers import caller_audio

from callpipe.frames.frames import ErrorFrame, TranscriptionFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.google.stt import GoogleSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.google_speech import FakeGoogleSpeechServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

RATE = 8000
PHONE = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
RECOGNIZER = "projects/acme-voice/locations/global/recognizers/_"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGoogleSpeechServer]:
    async with FakeGoogleSpeechServer() as server:
        yield server


def documented_config(**features: Any) -> cloud_speech.StreamingRecognitionConfig:
    """A streaming configuration as Google's guide builds it with the SDK."""
    return cloud_speech.StreamingRecognitionConfig(
        config=cloud_speech.RecognitionConfig(
            explicit_decoding_config=cloud_speech.ExplicitDecodingConfig(
                encoding=cloud_speech.ExplicitDecodingConfig.AudioEncoding.LINEAR16,
                sample_rate_hertz=RATE,
                audio_channel_count=1,
            ),
            language_codes=["en-US"],
            model="latest_long",
            features=cloud_speech.RecognitionFeatures(**features),
        ),
        streaming_features=cloud_speech.StreamingRecognitionFeatures(interim_results=True),
    )


def audio_requests(pcm: bytes, step: int = 1600) -> list[cloud_speech.StreamingRecognizeRequest]:
    return [
        cloud_speech.StreamingRecognizeRequest(audio=pcm[i : i + step])
        for i in range(0, len(pcm), step)
    ]


async def recognize(
    fake: FakeGoogleSpeechServer, requests: Iterable[cloud_speech.StreamingRecognizeRequest]
) -> list[cloud_speech.StreamingRecognizeResponse]:
    """The SDK's ``streaming_recognize`` over ``requests``; the responses it parsed."""

    async def requests_in_order() -> AsyncIterator[cloud_speech.StreamingRecognizeRequest]:
        for request in requests:
            yield request

    channel = grpc.aio.insecure_channel(fake.target)
    client = speech_v2.SpeechAsyncClient(transport=SpeechGrpcAsyncIOTransport(channel=channel))
    try:
        stream = await client.streaming_recognize(requests=requests_in_order())
        return [response async for response in stream]
    finally:
        await client.transport.close()


def first(
    config: cloud_speech.StreamingRecognitionConfig,
) -> cloud_speech.StreamingRecognizeRequest:
    return cloud_speech.StreamingRecognizeRequest(recognizer=RECOGNIZER, streaming_config=config)


async def test_the_sdk_streams_and_parses_interim_and_final_results(
    fake: FakeGoogleSpeechServer,
) -> None:
    fake.transcripts.append("book a table for two")
    pcm = tone_pcm(1.5, RATE) + bytes(int(0.6 * RATE) * 2)
    responses = await recognize(fake, [first(documented_config()), *audio_requests(pcm)])
    results = [r for response in responses for r in response.results]
    assert [r.is_final for r in results][-1] is True
    assert not any(r.is_final for r in results[:-1]) and len(results) > 1
    final = results[-1]
    assert final.alternatives[0].transcript == "book a table for two"
    assert final.language_code == "en-us"
    assert final.result_end_offset.total_seconds() == pytest.approx(1.9, abs=0.11)
    for response in responses:  # nothing in them the SDK does not know
        assert len(UnknownFieldSet(cloud_speech.StreamingRecognizeResponse.pb(response))) == 0
    assert [r.alternatives[0].transcript for r in results] == [
        r.alternatives[0].transcript for m in fake.sent for r in m.results
    ]
    assert fake.ended == ["half-closed"]


async def test_voice_activity_events_reach_the_sdk(fake: FakeGoogleSpeechServer) -> None:
    config = documented_config()
    config.streaming_features.enable_voice_activity_events = True
    pcm = tone_pcm(0.5, RATE) + bytes(int(0.6 * RATE) * 2)
    responses = await recognize(fake, [first(config), *audio_requests(pcm)])
    kinds = [r.speech_event_type.name for r in responses if r.speech_event_type]
    assert kinds == ["SPEECH_ACTIVITY_BEGIN", "SPEECH_ACTIVITY_END"]


@pytest.mark.parametrize(
    "requests",
    [
        pytest.param(
            [
                cloud_speech.StreamingRecognizeRequest(
                    recognizer=RECOGNIZER, streaming_config=documented_config(), audio=b"\0\0"
                )
            ],
            id="audio-in-the-first-request",
        ),
        pytest.param(
            [cloud_speech.StreamingRecognizeRequest(recognizer=RECOGNIZER)],
            id="no-configuration-for-the-implicit-recognizer",
        ),
        pytest.param(
            [first(documented_config()), first(documented_config())],
            id="configuration-in-a-later-request",
        ),
        pytest.param(
            [first(documented_config()), *audio_requests(bytes(16 * 1024), step=16 * 1024)],
            id="more-than-15-KB-of-audio",
        ),
        pytest.param(
            [
                cloud_speech.StreamingRecognizeRequest(
                    recognizer="recognizers/_", streaming_config=documented_config()
                )
            ],
            id="a-malformed-recognizer",
        ),
    ],
)
async def test_what_the_reference_forbids_is_invalid_argument(
    fake: FakeGoogleSpeechServer, requests: list[cloud_speech.StreamingRecognizeRequest]
) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        await recognize(fake, requests)


async def test_a_scripted_refusal_reaches_the_sdk_as_its_status(
    fake: FakeGoogleSpeechServer,
) -> None:
    fake.fail_next.append(("PERMISSION_DENIED", "Permission 'speech.recognizers.recognize' denied"))
    with pytest.raises(exceptions.PermissionDenied):
        await recognize(fake, [first(documented_config()), *audio_requests(bytes(3200))])


async def test_our_first_request_is_the_one_the_sdk_builds(
    fake: FakeGoogleSpeechServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "acme-voice")
    settings = GoogleSTTService.Settings(
        languages=[Language.EN_US], profanity_filter=True, enable_word_time_offsets=True
    )
    stt = GoogleSTTService(url=fake.base_url, settings=settings)
    frames = [
        SleepFrame(5.0, until=lambda: bool(fake.first_requests)),
        *caller_audio(1.0, loud=True),
        *caller_audio(0.6, loud=False),
        SleepFrame(5.0, until=lambda: bool(fake.finals())),
    ]
    down, up = await run_test(stt, frames, params=PHONE)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["hello"]
    expected = first(
        documented_config(
            enable_automatic_punctuation=True,
            profanity_filter=True,
            enable_word_time_offsets=True,
        )
    )
    ours = fake.first_requests[0]
    assert cloud_speech.StreamingRecognizeRequest.serialize(
        ours
    ) == cloud_speech.StreamingRecognizeRequest.serialize(expected)
    # Every later request held only audio, within the limit (the fake refuses anything else).
    assert fake.ended == ["half-closed"]
