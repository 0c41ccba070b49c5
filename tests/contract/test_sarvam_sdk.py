"""The official ``sarvamai`` SDK's streaming clients against FakeSarvamServer, and our services'
messages against the SDK's.

The SDK's ``AsyncSarvamAI`` (pointed at the fake through its ``environment``) streams speech to
text and text to speech; every message the fake sends must validate as the SDK's response
models, with no field they lack. Our services' handshakes (query and key header) must be the
ones the SDK opens for the same options, and their messages the ones the SDK sends.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import BaseModel
from sarvamai import AsyncSarvamAI, SarvamAIEnvironment
from sarvamai.types.audio_data import AudioData
from sarvamai.types.audio_message import AudioMessage
from sarvamai.types.audio_output import AudioOutput
from sarvamai.types.audio_output_data import AudioOutputData
from sarvamai.types.configure_connection import ConfigureConnection
from sarvamai.types.error_data import ErrorData
from sarvamai.types.error_response import ErrorResponse
from sarvamai.types.error_response_data import ErrorResponseData
from sarvamai.types.event_response import EventResponse
from sarvamai.types.event_response_data import EventResponseData
from sarvamai.types.events_data import EventsData
from sarvamai.types.flush_signal import FlushSignal
from sarvamai.types.ping_signal import PingSignal
from sarvamai.types.send_text import SendText
from sarvamai.types.speech_to_text_streaming_response import SpeechToTextStreamingResponse
from sarvamai.types.speech_to_text_transcription_data import SpeechToTextTranscriptionData
from sarvamai.types.stt_flush_signal import SttFlushSignal
from sarvamai.types.text_to_speech_response import TextToSpeechResponse
from sarvamai.types.transcription_metrics import TranscriptionMetrics

from callpipe.frames.frames import (
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.sarvam.stt import SarvamSTTService
from callpipe.services.sarvam.tts import SarvamHttpTTSService, SarvamTTSService, wav_pcm
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.sarvam import FakeSarvamHTTPServer, FakeSarvamServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

RATE = 8000
PARAMS = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)


def caller_audio(secs: float) -> list[InputAudioRawFrame]:
    """``secs`` of the caller's speech (a tone) in 20 ms packets."""
    pcm = tone_pcm(secs, RATE)
    return [InputAudioRawFrame(pcm[i : i + 320], RATE) for i in range(0, len(pcm), 320)]


def client(fake: FakeSarvamServer | FakeSarvamHTTPServer) -> AsyncSarvamAI:
    if isinstance(fake, FakeSarvamHTTPServer):
        environment = SarvamAIEnvironment(
            base=fake.base_url, creative="http://unused", production="ws://unused"
        )
    else:
        environment = SarvamAIEnvironment(
            base="http://unused", creative="http://unused", production=fake.url
        )
    return AsyncSarvamAI(api_subscription_key="test-key", environment=environment)


def exact(model: type[BaseModel], message: dict[str, Any]) -> None:
    """``message`` validates as ``model`` and has no field the SDK does not model."""
    model.model_validate(message)
    assert set(message) <= set(model.model_fields), (model.__name__, set(message))


def validate_stt(message: dict[str, Any]) -> str:
    exact(SpeechToTextStreamingResponse, message)
    data = message["data"]
    kind = message["type"]
    if kind == "data":
        exact(SpeechToTextTranscriptionData, data)
        exact(TranscriptionMetrics, data["metrics"])
    elif kind == "events":
        exact(EventsData, data)
    else:
        assert kind == "error"
        exact(ErrorData, data)
    return str(kind)


def validate_tts(message: dict[str, Any]) -> str:
    kind = message["type"]
    model, data_model = {
        "audio": (AudioOutput, AudioOutputData),
        "event": (EventResponse, EventResponseData),
        "error": (ErrorResponse, ErrorResponseData),
    }[kind]
    exact(model, message)
    exact(data_model, message["data"])
    return str(kind)


def sdk_message(model: BaseModel) -> dict[str, Any]:
    """What the SDK puts on the wire for ``model`` (its ``_send_model``)."""
    return json.loads(json.dumps(model.dict()))


STT_OPTIONS: dict[str, str] = {
    "language_code": "hi-IN",
    "model": "saaras:v4",
    "mode": "translit",
    "sample_rate": "8000",
    "high_vad_sensitivity": "true",
    "negative_frames_count": "4",
    "flush_signal": "true",
    "input_audio_codec": "pcm_s16le",
}


@pytest.mark.timeout(20)
async def test_sdk_transcribes_through_the_fake_and_validates_every_message() -> None:
    async with FakeSarvamServer() as fake:
        fake.transcripts.extend(["pehli baat", "doosri baat"])
        kinds: list[str] = []
        async with client(fake).speech_to_text_streaming.connect(
            **STT_OPTIONS, vad_signals="true"
        ) as ws:
            pcm = tone_pcm(0.4, RATE) + bytes(int(0.6 * RATE) * 2)
            for i in range(0, len(pcm), 1600):
                await ws.transcribe(base64.b64encode(pcm[i : i + 1600]).decode(), sample_rate=RATE)
            while (await ws.recv()).type != "data":
                pass
            fake.error_next = "bad audio"
            await ws.transcribe(base64.b64encode(bytes(1600)).decode(), sample_rate=RATE)
            assert (await ws.recv()).type == "error"
            await ws.transcribe(base64.b64encode(tone_pcm(0.3, RATE)).decode(), sample_rate=RATE)
            await ws.flush()
            while (response := await ws.recv()).type != "data":
                pass
            assert response.data.transcript == "doosri baat"  # type: ignore[union-attr]
        for message in fake.sent:  # as sent on the wire
            kinds.append(validate_stt(json.loads(json.dumps(message))))
    assert kinds == ["events", "events", "data", "error", "events", "events", "data"]
    assert fake.headers[0]["api-subscription-key"] == "test-key"


@pytest.mark.timeout(20)
async def test_our_stt_handshake_and_messages_are_the_sdks() -> None:
    async with FakeSarvamServer() as fake:
        async with client(fake).speech_to_text_streaming.connect(**STT_OPTIONS) as ws:
            await ws.transcribe(base64.b64encode(bytes(1600)).decode(), sample_rate=RATE)
            await ws.flush()
            await ws.recv()
        stt = SarvamSTTService(
            api_key="test-key",
            url=fake.url,
            mode="translit",
            settings=SarvamSTTService.Settings(
                language=Language.HI, high_vad_sensitivity=True, negative_frames_count=4
            ),
        )
        frames = [
            SleepFrame(5.0, until=lambda: len(fake.stt_queries) == 2),
            *caller_audio(0.2),
            UserStoppedSpeakingFrame(),
            SleepFrame(5.0, until=lambda: sum(m["type"] == "data" for m in fake.sent) == 2),
        ]
        down, _ = await run_test(stt, frames, params=PARAMS)
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["hello"]
    sdk_query, our_query = fake.stt_queries
    assert our_query == sdk_query
    assert fake.headers[1]["api-subscription-key"] == fake.headers[0]["api-subscription-key"]
    sdk_messages = [m for m in fake.stt_messages[:2]]
    ours = fake.stt_messages[2:]
    audio = next(m for m in ours if "audio" in m)
    data = audio["audio"]
    expected = AudioMessage(
        audio=AudioData(data=data["data"], sample_rate=RATE, encoding="audio/wav")
    )
    assert audio == sdk_message(expected)
    assert set(audio["audio"]) == set(sdk_messages[0]["audio"])
    assert ours[-1] == sdk_message(SttFlushSignal()) == sdk_messages[1]


@pytest.mark.timeout(20)
async def test_sdk_speaks_through_the_fake_and_validates_every_message() -> None:
    async with FakeSarvamServer() as fake:
        kinds: list[str] = []
        async with client(fake).text_to_speech_streaming.connect(
            model="bulbul:v3", send_completion_event="true"
        ) as ws:
            await ws.configure(
                target_language_code="hi-IN",
                speaker="shubh",
                speech_sample_rate=8000,
                output_audio_codec="mulaw",
            )
            await ws.convert("Namaste, aap kaise hain?")
            await ws.ping()
            await ws.flush()
            while not isinstance(await ws.recv(), EventResponse):
                pass
            fake.error_next = "text too long"
            await ws.convert("x")
            assert isinstance(await ws.recv(), ErrorResponse)
        for message in fake.sent:
            kinds.append(validate_tts(json.loads(json.dumps(message))))
    assert kinds[-2:] == ["event", "error"] and set(kinds[:-2]) == {"audio"}
    assert fake.runs == ["Namaste, aap kaise hain?"]


@pytest.mark.timeout(20)
async def test_our_tts_handshake_and_messages_are_the_sdks() -> None:
    async with FakeSarvamServer() as fake:
        async with client(fake).text_to_speech_streaming.connect(
            model="bulbul:v3", send_completion_event="true"
        ) as ws:
            await ws.configure(
                target_language_code="hi-IN", speaker="shubh", output_audio_codec="linear16"
            )
            await ws.convert("Ek.")
            await ws.flush()
            await ws.ping()
            while not isinstance(await ws.recv(), EventResponse):
                pass
        settings = SarvamTTSService.Settings(language=Language.HI, temperature=0.7)
        tts = SarvamTTSService(api_key="test-key", url=fake.url, settings=settings)
        reply = [LLMFullResponseStartFrame(), LLMTextFrame("Ek."), LLMFullResponseEndFrame()]
        await run_test(tts, reply, params=PARAMS)
    sdk_query, our_query = fake.tts_queries
    assert our_query == sdk_query
    assert fake.headers[1]["api-subscription-key"] == fake.headers[0]["api-subscription-key"]
    sdk_messages, ours = fake.tts_messages[:4], fake.tts_messages[4:]
    config = ours[0]
    # Our config is one the SDK's model takes and sends unchanged, with its field names.
    assert config == sdk_message(ConfigureConnection.model_validate(config))
    assert set(config["data"]) <= set(
        ConfigureConnection.model_fields["data"].annotation.model_fields
    )  # type: ignore[union-attr]
    assert config["data"]["language_code"] == sdk_messages[0]["data"]["language_code"]
    assert ours[1] == sdk_message(SendText.model_validate(ours[1]))
    assert ours[1]["data"]["text"].strip() == sdk_messages[1]["data"]["text"]
    assert ours[2] == sdk_message(FlushSignal()) == sdk_messages[2]
    assert sdk_messages[3] == sdk_message(PingSignal()) == {"type": "ping"}  # our keep-alive


@pytest.mark.timeout(20)
async def test_sdk_rest_speech_through_the_fake_and_our_body_is_the_sdks() -> None:
    async with FakeSarvamHTTPServer() as fake:
        sdk = client(fake)
        answer = await sdk.text_to_speech.convert(
            text="Ek do teen.",
            language_code="hi-IN",
            speaker="shubh",
            model="bulbul:v3",
            speech_sample_rate=8000,
            enable_preprocessing=True,
            pace=1.0,
            temperature=0.6,
        )
        assert isinstance(answer, TextToSpeechResponse)
        assert wav_pcm(base64.b64decode(answer.audios[0]))[0] == 8000
        settings = SarvamHttpTTSService.Settings(language=Language.HI, temperature=0.6)
        tts = SarvamHttpTTSService(api_key="test-key", base_url=fake.base_url, settings=settings)
        reply = [
            LLMFullResponseStartFrame(),
            LLMTextFrame("Ek do teen."),
            LLMFullResponseEndFrame(),
        ]
        await run_test(tts, reply, params=PARAMS)
    sdk_body, our_body = fake.requests
    assert our_body == sdk_body
    assert fake.headers[1]["api-subscription-key"] == fake.headers[0]["api-subscription-key"]
