"""The official ``cartesia`` SDK's ``tts.generate`` / ``tts.bytes`` against FakeCartesiaHTTPServer,
and CartesiaHttpTTSService's request against the SDK's.

The SDK posts ``/tts/bytes`` with ``Authorization: Bearer`` and its own ``cartesia-version``; the
fake must take both and stream the audio the body's ``output_format`` asks for. Our service's
body must be the one the SDK builds for the same options (and validate as its
``TTSGenerateParams``); its key goes in ``X-API-Key``, the other header Cartesia documents.
"""

from __future__ import annotations

import struct
import warnings
from typing import Any

import pytest
from cartesia import AsyncCartesia, AuthenticationError, BadRequestError
from cartesia.types.tts_generate_params import TTSGenerateParams
from pydantic import TypeAdapter

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.cartesia.tts import CartesiaHttpTTSService, GenerationConfig
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaHTTPServer

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
RAW_MULAW_8K: Any = {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}
VOICE: Any = {"mode": "id", "id": "voice-1"}  # the SDK types a voice object as {"id"}


def client(fake: FakeCartesiaHTTPServer, key: str = "test-key") -> AsyncCartesia:
    return AsyncCartesia(api_key=key, base_url=fake.base_url, max_retries=0)


async def test_sdk_streams_audio_from_the_fake() -> None:
    async with FakeCartesiaHTTPServer(secs_per_word=0.1) as fake:
        sdk = client(fake)
        async with sdk.tts.with_streaming_response.generate(
            model_id="sonic-3",
            transcript="Hello from the SDK.",
            voice=VOICE,
            output_format=RAW_MULAW_8K,
            language="en",
        ) as response:
            assert response.status_code == 200
            audio = b"".join([chunk async for chunk in response.iter_bytes()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # bytes() is generate()'s old name
            chunks = await sdk.tts.bytes(
                model_id="sonic-3",
                transcript="One two.",
                voice="voice-1",
                output_format={"container": "wav", "encoding": "pcm_s16le", "sample_rate": 16000},
            )
            wav = b"".join([chunk async for chunk in chunks])
    assert fake.headers[0]["authorization"] == "Bearer test-key"
    assert fake.headers[0]["cartesia-version"]
    assert len(audio) == 4 * 800  # four words of 0.1 s, one u-law byte per 8 kHz sample
    # A WAV container: a RIFF header whose data size is the 16-bit samples that follow.
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", wav[40:44])[0] == len(wav) - 44 == 2 * 1600 * 2


async def test_sdk_sees_a_bad_key_and_a_bad_request_refused() -> None:
    async with FakeCartesiaHTTPServer() as fake:
        with pytest.raises(AuthenticationError):
            await client(fake, "wrong").tts.generate(
                model_id="sonic-3", transcript="Hi.", voice="v", output_format=RAW_MULAW_8K
            )
        odd_rate: Any = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 12345}
        with pytest.raises(BadRequestError) as caught:
            await client(fake).tts.generate(
                model_id="sonic-3", transcript="Hi.", voice="v", output_format=odd_rate
            )
    body = caught.value.body
    assert isinstance(body, dict)
    assert set(body) == {"error_code", "title", "message", "request_id"}  # Cartesia's error object


async def test_our_request_is_the_sdks() -> None:
    config = GenerationConfig(speed=1.1, volume=0.8, emotion="calm")
    settings = CartesiaHttpTTSService.Settings(
        voice="voice-1",
        model="sonic-3",
        language="es-MX",
        generation_config=config,
        pronunciation_dict_id="dict-1",
    )
    async with FakeCartesiaHTTPServer() as fake:
        ours = CartesiaHttpTTSService(api_key="test-key", base_url=fake.base_url, settings=settings)
        _, up = await run_test(ours, [TTSSpeakFrame("Hola, buenos días.")], params=PHONE)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        await client(fake).tts.generate(
            model_id="sonic-3",
            transcript="Hola, buenos días.",
            voice=VOICE,
            output_format=RAW_MULAW_8K,
            language="es",
            generation_config={"speed": 1.1, "volume": 0.8, "emotion": "calm"},
            pronunciation_dict_id="dict-1",
        )
    ours_body, sdk_body = fake.requests
    assert ours_body == sdk_body
    TypeAdapter(TTSGenerateParams).validate_python(ours_body, strict=True)
    assert fake.headers[0]["x-api-key"] == "test-key"
    assert fake.headers[0]["cartesia-version"] == "2026-03-01"  # a version Cartesia documents
    assert fake.completed_streams == 2


async def test_the_audio_our_service_plays_is_what_the_sdk_gets() -> None:
    async with FakeCartesiaHTTPServer(secs_per_word=0.1) as fake:
        ours = CartesiaHttpTTSService(api_key="test-key", voice_id="v", base_url=fake.base_url)
        down, _ = await run_test(ours, [TTSSpeakFrame("One two three.")], params=PHONE)
        sdk_audio = await (
            await client(fake).tts.generate(
                model_id="sonic-3",
                transcript="One two three.",
                voice="v",
                output_format=RAW_MULAW_8K,
            )
        ).read()
    pcm = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert pcm == ulaw_to_pcm(sdk_audio)  # the same samples, decoded from u-law to 16-bit
