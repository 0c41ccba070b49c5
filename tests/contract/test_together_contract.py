"""FakeTogetherServer, TogetherSTTService and TogetherTTSService against Together's documented
WebSocket messages.

Together's Python SDK (``together``) does not cover these sockets (its docs: "only available
via raw WebSocket connections"), so the message shapes are transcribed below, strictly, from
Together's references:

- https://docs.together.ai/reference/audio-transcriptions-realtime (the ``/realtime``
  operation of Together's OpenAPI description: query, client and server events, error codes)
- https://docs.together.ai/reference/audio-speech-websocket (``/audio/speech/websocket``)

Every event the fake sends must validate as a documented server event, every message our
services send as a documented client message, and their handshakes may use only documented
query parameters with documented values. The documented examples are replayed through the
fake.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, TypeAdapter
from websockets.asyncio.client import connect

from callpipe.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.together.stt import TogetherSTTService
from callpipe.services.together.tts import TogetherTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.together import FakeTogetherServer
from callpipe.testing.pipeline import SleepFrame

from .replay import reply

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorObject(_Strict):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


# ---------------------------------------------------------------------- transcription


class AppendAudio(_Strict):
    type: Literal["input_audio_buffer.append"]
    audio: str


class CommitAudio(_Strict):
    type: Literal["input_audio_buffer.commit"]


class SessionUpdate(_Strict):
    type: Literal["transcription_session.updated"]
    session: dict[str, Any]


STT_CLIENT = TypeAdapter(AppendAudio | CommitAudio | SessionUpdate)


class SttSession(_Strict):
    id: str
    object: Literal["realtime.session"]
    modalities: list[str]
    model: str


class SttSessionCreated(_Strict):
    event_id: str | None = None
    type: Literal["session.created"]
    session: SttSession


class SttSessionUpdated(_Strict):
    event_id: str | None = None
    type: Literal["transcription_session.updated"]
    session: dict[str, Any]


class Committed(_Strict):
    """OpenAI-compatible acknowledgment of a commit (Together sends it; Pipecat reads it)."""

    event_id: str | None = None
    type: Literal["input_audio_buffer.committed"]
    item_id: str


class TranscriptDelta(_Strict):
    event_id: str | None = None
    type: Literal["conversation.item.input_audio_transcription.delta"]
    item_id: str | None = None
    delta: str


class TranscriptCompleted(_Strict):
    event_id: str | None = None
    type: Literal["conversation.item.input_audio_transcription.completed"]
    item_id: str | None = None
    transcript: str


class TranscriptFailed(_Strict):
    event_id: str | None = None
    type: Literal["conversation.item.input_audio_transcription.failed"]
    item_id: str | None = None
    error: ErrorObject


class ErrorEvent(_Strict):
    event_id: str | None = None
    type: Literal["error"]
    error: ErrorObject


STT_SERVER = TypeAdapter(
    SttSessionCreated
    | SttSessionUpdated
    | Committed
    | TranscriptDelta
    | TranscriptCompleted
    | TranscriptFailed
    | ErrorEvent
)
STT_QUERY = {"model", "input_audio_format", "turn_detection"}
STT_FORMATS = {"pcm_s16le_16000"}

# ---------------------------------------------------------------------- speech


class AppendText(_Strict):
    type: Literal["input_text_buffer.append"]
    text: str


class CommitText(_Strict):
    type: Literal["input_text_buffer.commit"]


class ClearText(_Strict):
    type: Literal["input_text_buffer.clear"]


class TtsSessionUpdate(_Strict):
    type: Literal["tts_session.updated"]
    session: dict[str, Any]


TTS_CLIENT = TypeAdapter(AppendText | CommitText | ClearText | TtsSessionUpdate)


class TtsSession(_Strict):
    id: str
    object: Literal["realtime.tts.session"]
    modalities: list[str]
    model: str
    voice: str


class TtsSessionCreated(_Strict):
    event_id: str | None = None
    type: Literal["session.created"]
    session: TtsSession


class TtsSessionUpdated(_Strict):
    type: Literal["session.updated"]
    session: dict[str, Any]


class TextReceived(_Strict):
    type: Literal["conversation.item.input_text.received"]
    text: str


class AudioDelta(_Strict):
    type: Literal["conversation.item.audio_output.delta"]
    item_id: str
    delta: str


class AudioDone(_Strict):
    type: Literal["conversation.item.audio_output.done"]
    item_id: str


class TtsFailed(_Strict):
    type: Literal["conversation.item.tts.failed"]
    item_id: str | None = None
    error: ErrorObject


TTS_SERVER = TypeAdapter(
    TtsSessionCreated
    | TtsSessionUpdated
    | TextReceived
    | AudioDelta
    | AudioDone
    | TtsFailed
    | ErrorEvent
)
# The socket's documented parameters (its table, the example URL's ``model``, and the speech
# API's ``language``), and the audio formats it lists.
TTS_QUERY = {
    "model",
    "model_id",
    "voice",
    "response_format",
    "speed",
    "max_partial_length",
    "language",
}
TTS_FORMATS = {"mp3", "opus", "aac", "flac", "wav", "pcm"}

# Documented examples.
DOC_STT_EVENTS = [
    {
        "type": "session.created",
        "session": {
            "id": "session-id",
            "object": "realtime.session",
            "modalities": ["audio"],
            "model": "openai/whisper-large-v3",
        },
    },
    {"type": "conversation.item.input_audio_transcription.delta", "delta": "The quick brown"},
    {
        "type": "conversation.item.input_audio_transcription.completed",
        "transcript": "The quick brown fox jumps over the lazy dog",
    },
    {
        "type": "conversation.item.input_audio_transcription.failed",
        "error": {
            "message": "Error description",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
    },
]
DOC_TTS_EVENTS = [
    {
        "event_id": "uuid-string",
        "type": "session.created",
        "session": {
            "id": "session-uuid",
            "object": "realtime.tts.session",
            "modalities": ["text", "audio"],
            "model": "canopylabs/orpheus-3b-0.1-ft",
            "voice": "tara",
        },
    },
    {"type": "conversation.item.input_text.received", "text": "Hello, this is a test sentence."},
    {"type": "conversation.item.audio_output.delta", "item_id": "tts_1", "delta": "AAAA"},
    {"type": "conversation.item.audio_output.done", "item_id": "tts_1"},
    {
        "type": "conversation.item.tts.failed",
        "error": {"message": "Error description", "type": "error_type", "code": "error_code"},
    },
]


def test_the_documented_examples_fit_the_transcribed_models() -> None:
    for event in DOC_STT_EVENTS:
        STT_SERVER.validate_python(event)
    for event in DOC_TTS_EVENTS:
        TTS_SERVER.validate_python(event)
    STT_CLIENT.validate_python({"type": "input_audio_buffer.append", "audio": "AAAA"})
    TTS_CLIENT.validate_python({"type": "tts_session.updated", "session": {"voice": "v"}})


async def test_the_docs_examples_against_the_fake() -> None:
    async with FakeTogetherServer() as fake:
        headers = {"Authorization": "Bearer test-key"}
        url = f"{fake.base_url}/realtime?model=openai/whisper-large-v3"
        url += "&input_audio_format=pcm_s16le_16000"
        async with connect(url, additional_headers=headers) as ws:
            pcm = tone_pcm(0.5, 16000)
            for i in range(0, len(pcm), 8192):
                audio = base64.b64encode(pcm[i : i + 8192]).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            while True:
                event = json.loads(await ws.recv())
                STT_SERVER.validate_python(event)
                if event["type"].endswith(".completed"):
                    assert event["transcript"] == "hello"
                    break
        url = f"{fake.base_url}/audio/speech/websocket?model=hexgrad/Kokoro-82M&voice=af_alloy"
        async with connect(url, additional_headers=headers) as ws:
            session = json.loads(await ws.recv())
            assert session["type"] == "session.created"
            for chunk in ("Hello, this is a test.", "This is the second sentence."):
                await ws.send(json.dumps({"type": "input_text_buffer.append", "text": chunk}))
            await ws.send(json.dumps({"type": "input_text_buffer.commit"}))
            dones = 0
            while dones < 2:
                event = json.loads(await ws.recv())
                TTS_SERVER.validate_python(event)
                dones += event["type"] == "conversation.item.audio_output.done"


async def test_every_fake_event_and_every_service_message_is_documented() -> None:
    async with FakeTogetherServer(chunk_delay=0.005) as fake:
        stt = TogetherSTTService(api_key="test-key", base_url=fake.base_url)
        frames = [
            SleepFrame(0.1),
            UserStartedSpeakingFrame(),
            *_caller_audio(0.5),
            UserStoppedSpeakingFrame(),
            SleepFrame(0.3),
        ]
        down, up = await run_test(stt, frames, params=PARAMS)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["hello"]

        tts = TogetherTTSService(
            api_key="test-key",
            url=fake.base_url + "/audio/speech/websocket",
            settings=TogetherTTSService.Settings(
                max_partial_length=200, extra_params={"pronunciation_dict": ["a/b"]}
            ),
        )
        tts_frames = [
            *reply("Hello there.", " How are you?"),
            *reply(" ".join(["word"] * 30) + "."),
            SleepFrame(0.05),
            InterruptionFrame(),
            *reply("Again."),
        ]
        _, up = await run_test(tts, tts_frames, params=PARAMS)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
    for event in fake.sent:
        adapter = STT_SERVER if "input_audio" in event["type"] else TTS_SERVER
        if event["type"] == "session.created":
            adapter = STT_SERVER if event["session"]["object"] == "realtime.session" else TTS_SERVER
        adapter.validate_python(event)
    for message in fake.stt_messages:
        STT_CLIENT.validate_python(message)
    for message in fake.tts_messages:
        TTS_CLIENT.validate_python(message)
    for path in fake.paths:
        split = urlsplit(path)
        query = parse_qs(split.query)
        if split.path.endswith("/realtime"):
            assert set(query) <= STT_QUERY
            assert query["input_audio_format"] == ["pcm_s16le_16000"]
            assert query["turn_detection"] == ["none"]  # documented: manual commits
        else:
            assert set(query) <= TTS_QUERY
            assert set(query["response_format"]) <= TTS_FORMATS
            assert int(query["max_partial_length"][0]) > 0


def _caller_audio(secs: float) -> list[Any]:
    from callpipe.frames.frames import InputAudioRawFrame

    pcm = tone_pcm(secs, 8000)
    return [InputAudioRawFrame(pcm[i : i + 320], 8000) for i in range(0, len(pcm), 320)]
