"""NVIDIA's own ``nvidia-riva-client`` against FakeRivaServer, and our services' requests
against the ones the SDK builds.

The SDK's ``riva.client.ASRService`` and ``SpeechSynthesisService`` (synchronous gRPC, run in a
thread) connect to the fake as NVIDIA's docs show, with ``riva.client.Auth(uri=...,
use_ssl=False, metadata_args=[["function-id", ...], ["authorization", "Bearer ..."]])``: a
streaming recognition (the SDK sends the ``streaming_config`` first, then the audio), an offline
``Recognize`` and a ``SynthesizeOnline``. Every response comes back through the SDK's stubs as
its own message with no field the SDK lacks. The fake's refusals of what Riva forbids (audio in
the first request, an unknown encoding, a wrong key) reach the SDK as gRPC statuses. Our
services' requests equal, field for field, what the SDK builds from the same settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

pytest.importorskip("riva.client")

import grpc
import riva.client
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_srv
from google.protobuf.unknown_fields import UnknownFieldSet
from riva.client.proto.riva_audio_pb2 import AudioEncoding
from tests.unit.services.helpers import caller_audio, reply

from callpipe.frames.frames import (
    ErrorFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.nvidia.stt import NvidiaSegmentedSTTService, NvidiaSTTService
from callpipe.services.nvidia.tts import NvidiaTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.nvidia_riva import FakeRivaServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

RATE = 8000
PHONE = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
KEY = "nvapi-contract"
FUNCTION = "bb0837de-8c7b-481f-9ec8-ef5663e9c1fa"
MODELS = {"function_id": FUNCTION, "model_name": "nemotron-asr-streaming"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeRivaServer]:
    async with FakeRivaServer(api_key=KEY, function_ids=(FUNCTION,)) as server:
        server.drain_secs = 0.1
        yield server


def auth(fake: FakeRivaServer, key: str = KEY) -> riva.client.Auth:
    """The SDK's connection as NVIDIA's docs set it up for its cloud (here without TLS)."""
    return riva.client.Auth(
        uri=fake.target,
        use_ssl=False,
        metadata_args=[["function-id", FUNCTION], ["authorization", f"Bearer {key}"]],
    )


def documented_config(**extra: Any) -> rasr.RecognitionConfig:
    return riva.client.RecognitionConfig(
        encoding=AudioEncoding.LINEAR_PCM,
        sample_rate_hertz=RATE,
        language_code="en-US",
        max_alternatives=1,
        enable_automatic_punctuation=True,
        audio_channel_count=1,
        **extra,
    )


def speech(secs: float = 1.0) -> bytes:
    return tone_pcm(secs, RATE) + bytes(int(0.6 * RATE) * 2)


def chunks(pcm: bytes, step: int = 1600) -> Iterator[bytes]:
    return (pcm[i : i + step] for i in range(0, len(pcm), step))


def assert_known_fields(message: Any) -> None:
    assert len(UnknownFieldSet(message)) == 0
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        for item in value if descriptor.is_repeated else [value]:
            if hasattr(item, "ListFields"):
                assert_known_fields(item)


async def test_sdk_streaming_recognition(fake: FakeRivaServer) -> None:
    fake.transcripts.append("book a table for two")
    asr = riva.client.ASRService(auth(fake))
    config = riva.client.StreamingRecognitionConfig(
        config=documented_config(), interim_results=True
    )

    def run() -> list[Any]:
        return list(asr.streaming_response_generator(chunks(speech(1.5)), config))

    responses = await asyncio.to_thread(run)
    for response in responses:
        assert isinstance(response, rasr.StreamingRecognizeResponse)
        assert_known_fields(response)
    results = [r for response in responses for r in response.results]
    finals = [r.alternatives[0].transcript for r in results if r.is_final]
    assert finals == ["book a table for two"]
    assert any(not r.is_final for r in results)
    assert fake.first_requests[0] == rasr.StreamingRecognizeRequest(streaming_config=config)
    assert fake.ended == ["half-closed"]


async def test_sdk_offline_recognition_and_synthesis(fake: FakeRivaServer) -> None:
    fake.transcripts.append("one utterance")
    asr = riva.client.ASRService(auth(fake))
    response = await asyncio.to_thread(asr.offline_recognize, speech(), documented_config())
    assert isinstance(response, rasr.RecognizeResponse)
    assert_known_fields(response)
    assert response.results[0].alternatives[0].transcript == "one utterance"

    tts = riva.client.SpeechSynthesisService(auth(fake))

    def synthesize() -> list[Any]:
        return list(
            tts.synthesize_online(
                "Hello from the fake.",
                voice_name="Magpie-Multilingual.EN-US.Aria",
                language_code="en-US",
                sample_rate_hz=RATE,
            )
        )

    audio = await asyncio.to_thread(synthesize)
    for each in audio:
        assert_known_fields(each)
    assert b"".join(r.audio for r in audio) == tone_pcm(4 * fake.secs_per_word, RATE)


async def test_refusals_reach_the_sdk_as_statuses(fake: FakeRivaServer) -> None:
    asr = riva.client.ASRService(auth(fake, key="wrong"))
    with pytest.raises(grpc.RpcError) as refused:
        await asyncio.to_thread(asr.offline_recognize, speech(), documented_config())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    stub = rasr_srv.RivaSpeechRecognitionStub(auth(fake).channel)
    bad_config = riva.client.StreamingRecognitionConfig(
        config=documented_config(), interim_results=True
    )
    bad_config.config.encoding = AudioEncoding.OGGOPUS

    def stream(requests: list[Any]) -> None:
        list(stub.StreamingRecognize(iter(requests), metadata=auth(fake).get_auth_metadata()))

    audio_first = [rasr.StreamingRecognizeRequest(audio_content=b"\0\0" * 800)]
    for requests in (audio_first, [rasr.StreamingRecognizeRequest(streaming_config=bad_config)]):
        with pytest.raises(grpc.RpcError) as invalid:
            await asyncio.to_thread(stream, requests)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_our_streaming_request_is_the_one_pipecats_sdk_calls_build(
    fake: FakeRivaServer,
) -> None:
    stt = NvidiaSTTService(
        api_key=KEY, server=fake.target, use_ssl=False, model_function_map=MODELS
    )
    frames = [*caller_audio(1.0, loud=True), *caller_audio(0.6, loud=False)]
    frames.append(SleepFrame(0.2))
    down, up = await run_test(stt, frames, params=PHONE)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["hello"]
    # What NVIDIA's SDK builds for the same settings (as Pipecat 1.14 builds it).
    sdk = riva.client.StreamingRecognitionConfig(
        config=riva.client.RecognitionConfig(
            encoding=AudioEncoding.LINEAR_PCM,
            language_code="en-US",
            model="",
            max_alternatives=1,
            profanity_filter=False,
            enable_automatic_punctuation=True,
            verbatim_transcripts=True,
            sample_rate_hertz=RATE,
            audio_channel_count=1,
            enable_word_time_offsets=False,
        ),
        interim_results=True,
    )
    riva.client.add_endpoint_parameters_to_config(sdk, -1, -1.0, 320, -1, -1.0, -1.0)
    assert fake.first_requests[0] == rasr.StreamingRecognizeRequest(streaming_config=sdk)
    assert fake.metadata[0]["authorization"] == f"Bearer {KEY}"
    assert fake.metadata[0]["function-id"] == FUNCTION


async def test_our_offline_and_synthesis_requests_are_the_sdks(fake: FakeRivaServer) -> None:
    stt = NvidiaSegmentedSTTService(
        api_key=KEY,
        server=fake.target,
        use_ssl=False,
        model_function_map=MODELS,
        custom_configuration="enable_vad_endpointing:true",
        settings=NvidiaSegmentedSTTService.Settings(boosted_lm_words=["Riva"]),
    )
    frames = [
        UserStartedSpeakingFrame(),
        *caller_audio(0.5, loud=True),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.3),
    ]
    await run_test(stt, frames, params=PHONE)
    sdk = documented_config(verbatim_transcripts=False)
    riva.client.add_word_boosting_to_config(sdk, ["Riva"], 4.0)
    riva.client.add_custom_configuration_to_config(sdk, "enable_vad_endpointing:true")
    [ours] = fake.recognize_requests
    assert ours.config == sdk

    tts = NvidiaTTSService(
        api_key=KEY, server=fake.target, use_ssl=False, model_function_map=MODELS
    )
    await run_test(tts, reply("Hello there."), params=PHONE)
    service = riva.client.SpeechSynthesisService(auth(fake))

    def synthesize() -> None:
        for _ in service.synthesize_online(
            "Hello there.",
            voice_name="Magpie-Multilingual.EN-US.Aria",
            language_code="en-US",
            sample_rate_hz=RATE,
        ):
            pass

    await asyncio.to_thread(synthesize)
    ours_tts, sdks = fake.synthesize_requests
    assert ours_tts == sdks
