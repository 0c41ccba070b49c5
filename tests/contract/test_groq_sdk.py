"""The official ``groq`` SDK against FakeOpenAIServer's Groq routes, and our Groq requests
against what the SDK sends.

The SDK calls the fake's transcription and speech endpoints: the transcription answer must
parse as the SDK's ``Transcription`` and the speech body must be a WAV file at the rate asked
for. For the same options, GroqSTTService's multipart form and GroqTTSService's JSON body must
equal the ones the SDK sends, and validate as the SDK's request params.
"""

from __future__ import annotations

import io
import wave

import pytest
from groq import AsyncGroq, AuthenticationError
from groq.types.audio import Transcription, speech_create_params, transcription_create_params
from pydantic import TypeAdapter

from callpipe.audio.wav import pcm_to_wav
from callpipe.frames.frames import (
    InputAudioRawFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.groq.stt import GroqSTTService
from callpipe.services.groq.tts import GroqTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeOpenAIServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

SPEECH_PARAMS = TypeAdapter(speech_create_params.SpeechCreateParams)
# The file field's type has no pydantic schema: the form is checked by field names.
TRANSCRIPTION_FIELDS = transcription_create_params.TranscriptionCreateParams
RATE = 8000


def sdk(fake: FakeOpenAIServer, key: str = "test-key") -> AsyncGroq:
    # The SDK's paths carry the /openai/v1 prefix itself.
    return AsyncGroq(api_key=key, base_url=fake.groq_base_url[: -len("/openai/v1")], max_retries=0)


async def test_the_sdk_transcribes_and_speaks_through_the_fake() -> None:
    async with FakeOpenAIServer(speech_secs_per_word=0.1) as fake:
        fake.transcripts.append("hello there")
        client = sdk(fake)
        text = await client.audio.transcriptions.create(
            model="whisper-large-v3-turbo",
            file=("a.wav", pcm_to_wav(tone_pcm(0.2, RATE), RATE), "audio/wav"),
        )
        speech = await client.audio.speech.create(
            model="canopylabs/orpheus-v1-english",
            voice="autumn",
            input="Two words.",
            response_format="wav",
            sample_rate=16000,
        )
        body = await speech.read()
        models = await client.models.list()
        with pytest.raises(AuthenticationError):
            await sdk(fake, "wrong").models.list()
    assert isinstance(text, Transcription) and text.text == "hello there"
    Transcription.model_validate(text.model_dump(), strict=True)
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() == int(2 * 0.1 * 16000)
    assert [m.id for m in models.data]


async def test_our_requests_are_the_ones_the_sdk_sends() -> None:
    params = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
    async with FakeOpenAIServer() as fake:
        client = sdk(fake)
        wav = pcm_to_wav(tone_pcm(0.2, RATE), RATE)
        await client.audio.transcriptions.create(
            model="whisper-large-v3-turbo",
            file=("utterance.wav", wav, "audio/wav"),
            response_format="verbose_json",
            language="de",
            prompt="menu",
            temperature=0.2,
        )
        async with client.audio.speech.with_streaming_response.create(
            model="canopylabs/orpheus-v1-english",
            voice="autumn",
            input="Hello there.",
            response_format="wav",
            speed=1.0,
            sample_rate=RATE,
        ) as response:
            await response.read()
        stt = GroqSTTService(
            api_key="test-key",
            base_url=fake.groq_base_url,
            include_prob_metrics=True,
            settings=GroqSTTService.Settings(language="de", prompt="menu", temperature=0.2),
        )
        pcm = tone_pcm(0.3, RATE)
        frames = [
            UserStartedSpeakingFrame(),
            *(InputAudioRawFrame(pcm[i : i + 320], RATE) for i in range(0, len(pcm), 320)),
            UserStoppedSpeakingFrame(),
            SleepFrame(0.3),
        ]
        await run_test(stt, frames, params=params)
        tts = GroqTTSService(api_key="test-key", base_url=fake.groq_base_url)
        await run_test(tts, [TTSSpeakFrame("Hello there.")], params=params)
    sdk_form, our_form = fake.transcription_requests
    sdk_form.pop("file"), our_form.pop("file")
    assert our_form == sdk_form
    form = {k for k in our_form if not k.endswith(".filename")}
    assert TRANSCRIPTION_FIELDS.__required_keys__ <= form
    assert form <= TRANSCRIPTION_FIELDS.__required_keys__ | TRANSCRIPTION_FIELDS.__optional_keys__
    sdk_body, our_body = fake.speech_requests
    assert our_body == sdk_body
    SPEECH_PARAMS.validate_python(our_body, strict=True)
