"""The xAI fakes and services against xAI's documented speech API.

xAI's official Python SDK (``xai-sdk``) covers chat, images and other gRPC services but not
speech, so the shapes are transcribed below, strictly, from xAI's documentation:

- https://docs.x.ai/developers/model-capabilities/audio/speech-to-text (``wss://api.x.ai/v1/stt``)
- https://docs.x.ai/developers/model-capabilities/audio/text-to-speech (``POST /v1/tts`` and
  ``wss://api.x.ai/v1/tts``)
- https://docs.x.ai/developers/rest-api-reference/inference/voice

Every event a fake sends must validate as a documented server event, every message our services
send as a documented client message, and their handshakes and request bodies may use only
documented parameters with documented values.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter
from tests.unit.services.helpers import caller_audio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

from callpipe.frames.frames import ErrorFrame, InterruptionFrame, STTUpdateSettingsFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.xai.stt import XAISTTService
from callpipe.services.xai.tts import XAIHttpTTSService, XAITTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.xai import FakeXAISTTServer, FakeXAITTSServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .replay import reply

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
SAMPLE_RATES = {"8000", "16000", "22050", "24000", "44100", "48000"}
BOOLEANS = {"true", "false"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------------- speech to text


class AudioDone(_Strict):
    type: Literal["audio.done"]


class TranscriptCreated(_Strict):
    type: Literal["transcript.created"]


class Word(BaseModel):
    """A word segment (its fields are not all listed: extra ones are allowed)."""

    model_config = ConfigDict(extra="allow")


class TranscriptPartial(_Strict):
    type: Literal["transcript.partial"]
    text: str
    words: list[Word] | None = None
    is_final: bool
    speech_final: bool
    start: float | int | None = None
    duration: float | int | None = None
    channel_index: int | None = None


class TranscriptDone(_Strict):
    type: Literal["transcript.done"]
    text: str | None = None
    duration: float | int
    channel_index: int | None = None


class STTError(_Strict):
    type: Literal["error"]
    message: str


STT_SERVER = TypeAdapter(TranscriptCreated | TranscriptPartial | TranscriptDone | STTError)
STT_CLIENT = TypeAdapter(AudioDone)
STT_QUERY = {
    "sample_rate",
    "encoding",
    "interim_results",
    "endpointing",
    "language",
    "multichannel",
    "channels",
    "diarize",
    "model",
}


def check_stt_query(query: dict[str, list[str]]) -> None:
    assert set(query) <= STT_QUERY
    assert all(len(values) == 1 for values in query.values())
    assert query["sample_rate"][0] in SAMPLE_RATES
    assert query["encoding"][0] in {"pcm", "mulaw", "alaw"}
    for name in ("interim_results", "multichannel", "diarize"):
        assert query.get(name, ["true"])[0] in BOOLEANS
    assert 0 <= int(query.get("endpointing", ["0"])[0]) <= 5000
    assert len(query.get("language", ["en"])[0]) == 2


async def test_every_stt_event_and_service_message_is_documented() -> None:
    async with FakeXAISTTServer() as fake:
        fake.transcripts.extend(["book a table", "for two"])
        frames = [
            SleepFrame(0.1),
            *caller_audio(1.0, loud=True),
            *caller_audio(0.6, loud=False),
            STTUpdateSettingsFrame(
                delta=XAISTTService.Settings(language=Language.ES, endpointing=300, diarize=True)
            ),
            SleepFrame(5.0, until=lambda: fake.connections == 2 and len(fake.commands) == 1),
            *caller_audio(0.6, loud=True),
        ]
        stt = XAISTTService(api_key="test-key", ws_url=fake.url, encoding="mulaw")
        _, up = await run_test(stt, frames, params=PARAMS)
        fake.error_next = "bad audio"
        await run_test(
            XAISTTService(api_key="test-key", ws_url=fake.url),
            [SleepFrame(0.1), *caller_audio(0.2, loud=True), SleepFrame(0.1)],
            params=PARAMS,
        )
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    kinds = {e["type"] for e in fake.sent}
    assert kinds == {"transcript.created", "transcript.partial", "transcript.done", "error"}
    for event in fake.sent:
        STT_SERVER.validate_python(event)
    for command in fake.commands:
        STT_CLIENT.validate_python(command)
    for query in fake.queries:
        check_stt_query(query)
    assert fake.queries[1]["language"] == ["es"] and fake.queries[1]["diarize"] == ["true"]
    assert all(h["authorization"] == "Bearer test-key" for h in fake.headers)


async def test_a_documented_client_session_against_the_stt_fake() -> None:
    """The docs' flow: connect with the query, stream 100 ms PCM chunks, send audio.done,
    read until the server closes after transcript.done."""
    async with FakeXAISTTServer() as fake:
        url = f"{fake.url}/v1/stt?sample_rate=16000&encoding=pcm&interim_results=true"
        events: list[dict[str, Any]] = []
        pcm = tone_pcm(1.0, 16000) + bytes(16000)
        async with connect(url, additional_headers={"Authorization": "Bearer test-key"}) as ws:
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
            await ws.send(json.dumps({"type": "audio.done"}))
            try:
                while True:
                    events.append(json.loads(await ws.recv()))
            except ConnectionClosedOK:
                pass
    for event in events:
        STT_SERVER.validate_python(event)
    assert events[0]["type"] == "transcript.created"
    assert events[-1]["type"] == "transcript.done"
    assert any(e["type"] == "transcript.partial" and e["speech_final"] for e in events)


# ---------------------------------------------------------------------- text to speech


class TextDelta(_Strict):
    type: Literal["text.delta"]
    delta: str


class TextDone(_Strict):
    type: Literal["text.done"]


class TextClear(_Strict):
    type: Literal["text.clear"]


class AudioTimestamps(_Strict):
    graph_chars: list[str]
    graph_times: list[list[float | int]]


class AudioDelta(_Strict):
    type: Literal["audio.delta"]
    delta: str
    audio_timestamps: AudioTimestamps | None = None


class AudioDoneEvent(_Strict):
    type: Literal["audio.done"]


class AudioClear(_Strict):
    type: Literal["audio.clear"]


class TTSError(_Strict):
    type: Literal["error"]
    message: str


TTS_CLIENT = TypeAdapter(TextDelta | TextDone | TextClear)
TTS_SERVER = TypeAdapter(AudioDelta | AudioDoneEvent | AudioClear | TTSError)
TTS_QUERY = {
    "voice",
    "language",
    "codec",
    "sample_rate",
    "speed",
    "optimize_streaming_latency",
    "text_normalization",
    "with_timestamps",
}
TTS_LANGUAGES = set(
    "auto en ar-EG ar-SA ar-AE bn zh fr de hi id it ja ko pt-BR pt-PT ru es-MX es-ES tr vi".split()
)
CODECS = {"mp3", "wav", "pcm", "mulaw", "ulaw", "alaw"}


async def test_every_tts_event_and_service_message_is_documented() -> None:
    async with FakeXAITTSServer(chunk_delay=0.01) as fake:
        frames = [
            *reply("Hello there.", " How are you?"),
            *reply(" ".join(["word"] * 30) + ".", " More."),
            SleepFrame(0.1),
            InterruptionFrame(),
            *reply("Again."),
        ]
        tts = XAITTSService(api_key="test-key", base_url=fake.url)
        _, up = await run_test(tts, frames, params=PARAMS)
        token = XAITTSService(
            api_key="test-key",
            base_url=fake.url,
            text_aggregation_mode="token",
            settings=XAITTSService.Settings(
                voice="ara",
                language=Language.PT_BR,
                speed=1.1,
                optimize_streaming_latency=1,
                text_normalization=True,
            ),
        )
        _, up_token = await run_test(token, reply("Olá", " amigo."), params=PARAMS)
        fake.error_next = "malformed"
        await run_test(
            XAITTSService(api_key="test-key", base_url=fake.url), reply("Oops."), params=PARAMS
        )
    assert not [f for f in up + up_token if isinstance(f, ErrorFrame)]
    assert {e["type"] for e in fake.events} == {"audio.delta", "audio.done", "audio.clear", "error"}
    assert any("audio_timestamps" in e for e in fake.events)
    for event in fake.events:
        TTS_SERVER.validate_python(event)
    kinds = {type(TTS_CLIENT.validate_python(m)).__name__ for m in fake.messages}
    assert kinds == {"TextDelta", "TextDone", "TextClear"}
    for query in fake.queries:
        assert set(query) <= TTS_QUERY
        assert query["language"] in TTS_LANGUAGES and query["codec"] in CODECS
        assert query["sample_rate"] in SAMPLE_RATES
        for name in ("text_normalization", "with_timestamps"):
            assert query.get(name, "true") in BOOLEANS
        assert 0.7 <= float(query.get("speed", "1")) <= 1.5
        assert query.get("optimize_streaming_latency", "0") in {"0", "1", "2"}
    assert all(h["authorization"] == "Bearer test-key" for h in fake.headers)


# The documented body of POST /v1/tts.
HTTP_BODY = {
    "text",
    "voice_id",
    "language",
    "output_format",
    "speed",
    "optimize_streaming_latency",
    "text_normalization",
}
OUTPUT_FORMAT = {"codec", "sample_rate", "bit_rate"}


def test_http_requests_use_documented_fields() -> None:
    tts = XAIHttpTTSService(
        api_key="k",
        sample_rate=8000,
        settings=XAIHttpTTSService.Settings(
            voice="leo", language=Language.ES_MX, speed=0.9, text_normalization=False
        ),
    )
    body = tts.request_body("Hola [pause] amigo.")
    assert set(body) <= HTTP_BODY
    assert set(body["output_format"]) <= OUTPUT_FORMAT
    assert body["language"] in TTS_LANGUAGES and body["language"] == "es-MX"
    assert body["output_format"] == {"codec": "mulaw", "sample_rate": 8000}
    assert isinstance(body["text_normalization"], bool)
