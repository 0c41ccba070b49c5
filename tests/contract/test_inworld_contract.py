"""The Inworld fakes and services against Inworld's documented messages, and the official
``inworld-tts`` SDK's HTTP streaming client against FakeInworldHTTPServer.

The SDK covers only the HTTP endpoints and has no typed models, so the message shapes are
transcribed below, strictly, from Inworld's API reference:

- https://docs.inworld.ai/api-reference/ttsAPI/texttospeech/synthesize-speech-websocket
  (client messages ``create``, ``send_text``, ``flush_context``, ``close_context``; server
  ``result`` objects with ``contextCreated``, ``audioChunk``, ``flushCompleted``,
  ``contextClosed`` and a ``status``)
- https://docs.inworld.ai/api-reference/ttsAPI/texttospeech/synthesize-speech-stream and
  .../synthesize-speech (request body; streamed ``{"result"}`` / ``{"error"}`` lines)
- https://docs.inworld.ai/docs/tts/capabilities/generating-audio (audio encodings)

Every event the fakes send must validate as a documented server message, every message or body
our services send as a documented client message, and the SDK must read the fake's stream.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import inworld_tts
from pydantic import BaseModel, ConfigDict, TypeAdapter

from callpipe.audio.wav import pcm_to_wav
from callpipe.frames.frames import ErrorFrame, InterruptionFrame, TTSAudioRawFrame, TTSTextFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.inworld.tts import InworldHttpTTSService, InworldTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.inworld import FakeInworldHTTPServer, FakeInworldServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

from .replay import ReplayServer, reply

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
WIDE = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)


def errors(frames: list[Any]) -> list[ErrorFrame]:
    return [f for f in frames if isinstance(f, ErrorFrame)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Encoding = Literal["LINEAR16", "MP3", "OGG_OPUS", "ALAW", "MULAW", "FLAC", "PCM", "WAV"]


class AudioConfig(_Strict):
    audioEncoding: Encoding | None = None
    sampleRateHertz: int | None = None
    bitRate: int | None = None
    speakingRate: float | None = None


class Synthesis(_Strict):
    """The options a context's ``create`` and an HTTP body share."""

    voiceId: str
    modelId: str
    audioConfig: AudioConfig | None = None
    temperature: float | None = None
    timestampType: Literal["TIMESTAMP_TYPE_UNSPECIFIED", "WORD", "CHARACTER"] | None = None
    applyTextNormalization: Literal["APPLY_TEXT_NORMALIZATION_UNSPECIFIED", "ON", "OFF"] | None = (
        None
    )
    deliveryMode: Literal["STABLE", "BALANCED", "CREATIVE"] | None = None
    language: str | None = None
    timestampTransportStrategy: Literal["ASYNC", "SYNC"] | None = None


# ---------------------------------------------------------------------- client → server


class CreateConfig(Synthesis):
    maxBufferDelayMs: int | None = None
    bufferCharThreshold: int | None = None
    autoMode: bool | None = None


class Empty(_Strict):
    pass


class SendTextBody(_Strict):
    text: str
    flush_context: Empty | None = None


class Create(_Strict):
    create: CreateConfig
    contextId: str | None = None


class SendText(_Strict):
    send_text: SendTextBody
    contextId: str | None = None


class FlushContext(_Strict):
    flush_context: Empty
    contextId: str | None = None


class CloseContext(_Strict):
    close_context: Empty
    contextId: str | None = None


CLIENT = TypeAdapter(Create | SendText | FlushContext | CloseContext)


# ---------------------------------------------------------------------- server → client


class Status(_Strict):
    code: int
    message: str
    details: list[Any]


class WordAlignment(_Strict):
    words: list[str]
    wordStartTimeSeconds: list[float | int]
    wordEndTimeSeconds: list[float | int]


class TimestampInfo(_Strict):
    wordAlignment: WordAlignment


class Usage(_Strict):
    processedCharactersCount: int
    modelId: str


class AudioChunk(_Strict):
    audioContent: str
    usage: Usage | None = None
    timestampInfo: TimestampInfo | None = None


class _Result(_Strict):
    contextId: str
    status: Status


class ContextCreated(_Result):
    contextCreated: CreateConfig


class AudioChunkResult(_Result):
    audioChunk: AudioChunk


class FlushCompleted(_Result):
    flushCompleted: Empty


class ContextClosed(_Result):
    contextClosed: Empty


class StatusOnly(_Result):
    """A refused message: only the (non-zero) status."""


class ServerMessage(_Strict):
    result: ContextCreated | AudioChunkResult | FlushCompleted | ContextClosed | StatusOnly


SERVER = TypeAdapter(ServerMessage)


# ---------------------------------------------------------------------- HTTP


class SynthesizeRequest(Synthesis):
    text: str


class StreamResult(_Strict):
    audioContent: str
    timestampInfo: TimestampInfo | None = None


class StreamLine(_Strict):
    result: StreamResult


class StreamError(_Strict):
    error: Status


class WholeResponse(_Strict):
    audioContent: str
    usage: Usage | None = None
    timestampInfo: TimestampInfo | None = None


LINE = TypeAdapter(StreamLine | StreamError)

# The documented WebSocket example messages (the API reference's examples).
DOCS_CLIENT = [
    {
        "create": {
            "voiceId": "Dennis",
            "modelId": "inworld-tts-1.5-max",
            "bufferCharThreshold": 100,
            "autoMode": True,
            "timestampType": "WORD",
            "timestampTransportStrategy": "ASYNC",
        },
        "contextId": "ctx-1",
    },
    {
        "send_text": {
            "text": "Hello, what a wonderful day to be a text-to-speech model!",
            "flush_context": {},
        },
        "contextId": "ctx-1",
    },
    {"flush_context": {}, "contextId": "ctx-1"},
    {"close_context": {}, "contextId": "ctx-1"},
]
OK = {"code": 0, "message": "", "details": []}
DOCS_WORDS = {
    "words": [
        "Hello,",
        "what",
        "a",
        "wonderful",
        "day",
        "to",
        "be",
        "a",
        "text-to-speech",
        "model.",
    ],
    "wordStartTimeSeconds": [0.031, 0.375, 0.901, 1.002, 1.386, 1.548, 1.649, 1.771, 1.852, 2.58],
    "wordEndTimeSeconds": [0.355, 0.86, 0.921, 1.326, 1.528, 1.609, 1.71, 1.791, 2.539, 2.802],
}
DOCS_SERVER = [
    {
        "result": {
            "contextId": "ctx-1",
            "contextCreated": {
                "voiceId": "Dennis",
                "audioConfig": {"audioEncoding": "LINEAR16", "sampleRateHertz": 16000},
                "modelId": "inworld-tts-1.5-max",
                "timestampType": "WORD",
                "maxBufferDelayMs": 3000,
                "autoMode": True,
                "timestampTransportStrategy": "SYNC",
            },
            "status": OK,
        }
    },
    {
        "result": {
            "contextId": "ctx-1",
            "audioChunk": {
                "audioContent": "UklGRgSYAABXQVZFZm10IBAAAAABAAEAgD4AAAB9AAACABAAZGF0YeCX=",
                "usage": {"processedCharactersCount": 79, "modelId": "inworld-tts-1.5-max"},
                "timestampInfo": {"wordAlignment": DOCS_WORDS},
            },
            "status": OK,
        }
    },
    {"result": {"contextId": "ctx-1", "contextClosed": {}, "status": OK}},
    {"result": {"contextId": "ctx-1", "flushCompleted": {}, "status": OK}},
]


def test_the_documented_examples_fit_the_transcribed_models() -> None:
    for message in DOCS_CLIENT:
        CLIENT.validate_python(message)
    for message in DOCS_SERVER:
        SERVER.validate_python(message)


async def test_every_fake_event_and_every_service_message_is_documented() -> None:
    async with FakeInworldServer(chunk_delay=0.005) as fake:
        runs: list[tuple[InworldTTSService, Any]] = [
            (InworldTTSService(api_key="test-key", url=fake.url), PHONE),
            (
                InworldTTSService(
                    api_key="test-key",
                    url=fake.url,
                    encoding="LINEAR16",
                    auto_mode=False,
                    apply_text_normalization="ON",
                    settings=InworldTTSService.Settings(
                        language="es", temperature=0.9, speaking_rate=1.1, delivery_mode="STABLE"
                    ),
                ),
                WIDE,
            ),
            (
                InworldTTSService(
                    api_key="test-key", url=fake.url, text_aggregation_mode="token", encoding="WAV"
                ),
                WIDE,
            ),
        ]
        frames = [
            *reply("Hello there.", " How are you?"),
            *reply(" ".join(["word"] * 30) + ".", " More."),
            SleepFrame(0.05),
            InterruptionFrame(),
            *reply("Again."),
        ]
        for tts, params in runs:
            _, up = await run_test(tts, frames, params=params)
            assert not errors(up)
        fake.error_next = "voice not found"
        await run_test(InworldTTSService(api_key="test-key", url=fake.url), reply("Oops."))
    events = {k for e in fake.events for k in e["result"]} - {"contextId", "status"}
    assert events >= {"contextCreated", "audioChunk", "flushCompleted", "contextClosed"}
    for event in fake.events:
        SERVER.validate_python(event)
    assert any(e["result"]["status"]["code"] != 0 for e in fake.events)
    sent = {type(CLIENT.validate_python(m)).__name__ for m in fake.messages}
    assert sent == {"Create", "SendText", "CloseContext"}
    assert {h["authorization"] for h in fake.headers} == {"Basic test-key"}


async def test_documented_payloads_replayed_through_the_service() -> None:
    """The API reference's audio chunk (its word alignment, with real 16 kHz LINEAR16 audio
    behind a WAV header, as that encoding sends it), then the flush and the close."""
    pcm = tone_pcm(2.802, 16000)
    chunk = base64.b64encode(pcm_to_wav(pcm, 16000)).decode()

    async def script(message: dict[str, Any]) -> list[dict[str, Any]]:
        context_id = message.get("contextId")
        if "create" in message:
            created = {**DOCS_SERVER[0]["result"], "contextId": context_id}
            return [{"result": created}]
        if "close_context" not in message:
            return []
        audio = {**DOCS_SERVER[1]["result"]["audioChunk"], "audioContent": chunk}  # type: ignore[index]
        return [
            {"result": {"contextId": context_id, "audioChunk": audio, "status": OK}},
            {"result": {"contextId": context_id, "flushCompleted": {}, "status": OK}},
            {"result": {"contextId": context_id, "contextClosed": {}, "status": OK}},
        ]

    async with ReplayServer(script) as server:
        tts = InworldTTSService(api_key="k", url=server.url, encoding="LINEAR16")
        down, up = await run_test(tts, reply("Hello, what a wonderful day."), params=WIDE)
    assert not errors(up)
    for message in server.received:
        CLIENT.validate_python(message)
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == DOCS_WORDS["words"]
    audio = sum(len(f.audio) for f in down if isinstance(f, TTSAudioRawFrame))
    assert audio == len(pcm)  # the header is not played


async def test_the_official_sdk_streams_from_the_http_fake() -> None:
    async with FakeInworldHTTPServer() as fake:
        chunks = [
            c
            async for c in inworld_tts.stream(
                "One two three.",
                voice="Dennis",
                encoding="MULAW",
                api_key="test-key",
                base_url=fake.base_url,
            )
        ]
        timed = [
            c
            async for c in inworld_tts.stream_with_timestamps(
                "Four five.",
                timestamp_type="WORD",
                voice="Dennis",
                encoding="LINEAR16",
                sample_rate=16000,
                api_key="test-key",
                base_url=fake.base_url,
            )
        ]
        tts = InworldHttpTTSService(
            api_key="test-key",
            base_url=fake.base_url,
            settings=InworldHttpTTSService.Settings(temperature=1.0, speaking_rate=1.0),
        )
        _, up = await run_test(tts, reply("Six seven."), params=PHONE)
    assert not errors(up)
    assert sum(len(c) for c in chunks) == int(0.3 * 8000)  # μ-law at 8 kHz: a byte a sample
    words = [w for c in timed if c["timestamps"] for w in c["timestamps"]["wordAlignment"]["words"]]
    assert words == ["Four", "five."]
    sdk_request, _, ours = fake.requests
    for body in fake.requests:
        SynthesizeRequest.model_validate(body)
    # Our request names what the SDK's does, with the same shapes.
    assert set(ours) <= set(sdk_request) | {"timestampType", "timestampTransportStrategy"}
    assert set(ours["audioConfig"]) <= set(sdk_request["audioConfig"])
    assert fake.headers[0]["authorization"] == fake.headers[2]["authorization"]


async def test_every_http_line_the_fake_streams_is_documented() -> None:
    import httpx

    async with FakeInworldHTTPServer() as fake:
        tts = InworldHttpTTSService(api_key="test-key", base_url=fake.base_url, encoding="WAV")
        body = tts.request_body("Hello there, friend.") | {
            "audioConfig": {"audioEncoding": "WAV", "sampleRateHertz": 16000}
        }
        SynthesizeRequest.model_validate(body)
        fake.stream_error_after = 1
        async with httpx.AsyncClient(base_url=fake.base_url) as client:
            headers = {"Authorization": "Basic test-key"}
            for path in ("/tts/v1/voice:stream", "/tts/v1/voice:stream", "/tts/v1/voice"):
                response = await client.post(path, json=body, headers=headers)
                assert response.status_code == 200
                if path.endswith(":stream"):
                    for line in response.text.splitlines():
                        LINE.validate_json(line)
                else:
                    WholeResponse.model_validate(response.json())
            refused = await client.post(path, json=body, headers={"Authorization": "Basic x"})
        assert refused.status_code == 401
        Status.model_validate(refused.json())
