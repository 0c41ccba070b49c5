"""The official ``google-cloud-texttospeech`` SDK (REST transport) against FakeGoogleTTSServer,
and GoogleHttpTTSService's request against the SDK's.

The SDK's client is pointed at the fake with ``client_options={"api_endpoint": "http://..."}``
(its REST transport keeps a scheme it is given, so no TLS is needed). Every answer the fake
sends must parse as the SDK's ``SynthesizeSpeechResponse`` with unknown fields refused; a bad
key's error must reach the SDK as Google's (HTTP 400, reason ``API_KEY_INVALID``);
and the body our service posts must be the one the SDK posts for the same options, and parse
as its ``SynthesizeSpeechRequest``.
"""

from __future__ import annotations

import asyncio
import io
import json
import wave
from typing import Any

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import texttospeech_v1 as tts
from google.protobuf import json_format

from callpipe.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.google.tts import GoogleHttpTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.google_tts import FakeGoogleTTSServer
from callpipe.transcriptions.language import Language

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
WIDE = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)


def sdk_client(fake: FakeGoogleTTSServer, key: str | None = None) -> tts.TextToSpeechClient:
    options: dict[str, Any] = {"api_endpoint": f"http://{fake.host}"}
    if key is not None:
        options["api_key"] = key
        return tts.TextToSpeechClient(transport="rest", client_options=options)
    return tts.TextToSpeechClient(
        transport="rest", client_options=options, credentials=AnonymousCredentials()
    )


async def synthesize(client: tts.TextToSpeechClient, **request: Any) -> bytes:
    """``synthesize_speech`` in a thread (the SDK's REST client is synchronous)."""
    response = await asyncio.to_thread(
        client.synthesize_speech, request=tts.SynthesizeSpeechRequest(**request)
    )
    return bytes(response.audio_content)


def check_answers(fake: FakeGoogleTTSServer) -> None:
    """Every answer the fake sent, as the SDK's message with no field it lacks."""
    assert fake.responses
    for answer in fake.responses:
        json_format.Parse(json.dumps(answer), tts.SynthesizeSpeechResponse.pb()())


async def test_sdk_gets_wav_audio_from_the_fake() -> None:
    async with FakeGoogleTTSServer(api_key=None, secs_per_word=0.1) as fake:
        audio = await synthesize(
            sdk_client(fake),
            input=tts.SynthesisInput(text="Hello from the SDK."),
            voice=tts.VoiceSelectionParams(language_code="en-US", name="en-US-Chirp3-HD-Charon"),
            audio_config=tts.AudioConfig(
                audio_encoding=tts.AudioEncoding.LINEAR16, sample_rate_hertz=16000
            ),
        )
        check_answers(fake)
    with wave.open(io.BytesIO(audio)) as wav:  # LINEAR16 comes as a WAV file, as documented
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (16000, 2, 1)
        assert wav.getnframes() == 4 * 1600  # four words of 0.1 s
    assert fake.requests[0]["audioConfig"] == {
        "audioEncoding": "LINEAR16",
        "sampleRateHertz": 16000,
    }


async def test_sdk_sends_the_key_and_sees_a_bad_one_refused() -> None:
    async with FakeGoogleTTSServer(api_key="test-key") as fake:
        request: dict[str, Any] = {
            "input": tts.SynthesisInput(text="Hi."),
            "voice": tts.VoiceSelectionParams(language_code="en-US"),
            "audio_config": tts.AudioConfig(audio_encoding=tts.AudioEncoding.MULAW),
        }
        audio = await synthesize(sdk_client(fake, "test-key"), **request)
        with pytest.raises(exceptions.BadRequest) as caught:
            await synthesize(sdk_client(fake, "wrong"), **request)
        with pytest.raises(exceptions.BadRequest, match="SSML"):
            bad = dict(request, input=tts.SynthesisInput(ssml="<speak>unclosed"))
            await synthesize(sdk_client(fake, "test-key"), **bad)
        check_answers(fake)
    assert audio[:4] == b"RIFF"  # MULAW comes in a WAV file too
    assert fake.headers[0]["x-goog-api-key"] == "test-key"
    assert caught.value.reason == "API_KEY_INVALID"  # the SDK read Google's ErrorInfo


@pytest.mark.parametrize(
    ("settings", "params", "sdk_request"),
    [
        (
            GoogleHttpTTSService.Settings(voice="en-US-Chirp3-HD-Aoede", speaking_rate=1.25),
            PHONE,
            {
                "input": tts.SynthesisInput(text="Hello there."),
                "voice": tts.VoiceSelectionParams(
                    language_code="en-US", name="en-US-Chirp3-HD-Aoede"
                ),
                "audio_config": tts.AudioConfig(
                    audio_encoding=tts.AudioEncoding.MULAW,
                    sample_rate_hertz=8000,
                    speaking_rate=1.25,
                ),
            },
        ),
        (
            GoogleHttpTTSService.Settings(
                voice="cmn-CN-Standard-A", language=Language("zh"), pitch="+1st"
            ),
            WIDE,
            {
                "input": tts.SynthesisInput(
                    ssml='<speak><voice name="cmn-CN-Standard-A" language="cmn-CN">'
                    '<prosody pitch="+1st">Hello there.</prosody></voice></speak>'
                ),
                "voice": tts.VoiceSelectionParams(language_code="cmn-CN", name="cmn-CN-Standard-A"),
                "audio_config": tts.AudioConfig(
                    audio_encoding=tts.AudioEncoding.LINEAR16, sample_rate_hertz=16000
                ),
            },
        ),
    ],
    ids=["chirp-phone", "ssml-wideband"],
)
async def test_our_request_is_the_sdks(
    settings: GoogleHttpTTSService.Settings, params: PipelineParams, sdk_request: dict[str, Any]
) -> None:
    async with FakeGoogleTTSServer(api_key="test-key") as fake:
        ours = GoogleHttpTTSService(api_key="test-key", base_url=fake.base_url, settings=settings)
        _, up = await run_test(ours, [TTSSpeakFrame("Hello there.")], params=params)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        await synthesize(sdk_client(fake, "test-key"), **sdk_request)
        check_answers(fake)
    ours_body, sdk_body = fake.requests
    assert ours_body == sdk_body
    tts.SynthesizeSpeechRequest.from_json(json.dumps(ours_body), ignore_unknown_fields=False)
    assert fake.headers[0]["x-goog-api-key"] == fake.headers[1]["x-goog-api-key"]


async def test_the_audio_our_service_plays_is_the_sdks_without_its_header() -> None:
    async with FakeGoogleTTSServer(api_key="test-key", secs_per_word=0.1) as fake:
        ours = GoogleHttpTTSService(api_key="test-key", base_url=fake.base_url)
        down, _ = await run_test(ours, [TTSSpeakFrame("One two three.")], params=WIDE)
        audio = await synthesize(
            sdk_client(fake, "test-key"),
            input=tts.SynthesisInput(text="One two three."),
            voice=tts.VoiceSelectionParams(language_code="en-US", name="en-US-Chirp3-HD-Charon"),
            audio_config=tts.AudioConfig(
                audio_encoding=tts.AudioEncoding.LINEAR16, sample_rate_hertz=16000
            ),
        )
    with wave.open(io.BytesIO(audio)) as wav:
        samples = wav.readframes(wav.getnframes())
    pcm = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert pcm == samples  # the WAV's samples, read by the stdlib, and nothing else
