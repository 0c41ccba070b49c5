"""The official ``mistralai`` SDK against the Mistral fakes, and our services' requests against
the SDK's.

Speech: the SDK's ``audio.speech.complete_async`` (streamed and not) through
FakeMistralSpeechServer; every event the fake streams must validate as the SDK's models, with no
field they lack; our service's body and headers must be the SDK's for the same options.

Realtime transcription: the SDK's ``audio.realtime`` client through FakeMistralRealtimeServer;
every message the fake sends must parse as one of the SDK's realtime events (none unknown), with
no field its model lacks; our service's URL, key header and messages (``session.update``, the
audio, the flush, the end) must be the ones the SDK sends for the same options.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.models import (
    AudioFormat,
    RealtimeTranscriptionError,
    RealtimeTranscriptionSession,
    SpeechResponse,
    SpeechStreamAudioDelta,
    SpeechStreamDone,
    TranscriptionStreamDone,
    TranscriptionStreamTextDelta,
    UsageInfo,
)
from mistralai.extra.realtime.connection import (
    _MESSAGE_MODELS,
    UnknownRealtimeEvent,
    parse_realtime_event,
)
from pydantic import BaseModel

from callpipe.frames.frames import InputAudioRawFrame, TTSSpeakFrame, UserStoppedSpeakingFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.mistral.stt import MistralSTTService
from callpipe.services.mistral.tts import MistralTTSService, sse_events
from callpipe.testing import run_test
from callpipe.testing.fakes.mistral import (
    SPEECH_PATH,
    FakeMistralRealtimeServer,
    FakeMistralSpeechServer,
)
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

RATE = 8000
PARAMS = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)


def exact(model: type[BaseModel], message: dict[str, Any]) -> None:
    """``message`` validates as ``model`` and has no field the SDK does not model."""
    model.model_validate(message)
    assert set(message) <= set(model.model_fields), (model.__name__, set(message))


@pytest.mark.timeout(20)
async def test_sdk_speaks_through_the_fake_and_every_event_is_the_sdks() -> None:
    async with FakeMistralSpeechServer() as fake:
        sdk = Mistral(api_key="test-key", server_url=fake.base_url)
        kinds = []
        async with await sdk.audio.speech.complete_async(
            input="One two three.",
            model="voxtral-mini-tts-2603",
            voice_id="gb_jane_neutral",
            response_format="pcm",
            stream=True,
        ) as stream:
            async for event in stream:
                kinds.append(type(event.data))
        assert kinds[-1] is SpeechStreamDone
        assert set(kinds[:-1]) == {SpeechStreamAudioDelta}
        whole = await sdk.audio.speech.complete_async(
            input="One.", voice_id="gb_jane_neutral", response_format="wav"
        )
        assert isinstance(whole, SpeechResponse) and whole.audio_data

        # The raw events, field by field.
        async with (
            httpx.AsyncClient(base_url=fake.base_url) as http,
            http.stream(
                "POST",
                SPEECH_PATH,
                json=fake.requests[0],
                headers={"Authorization": "Bearer test-key"},
            ) as response,
        ):
            events = [event async for event in sse_events(response)]
        assert response.headers["content-type"].startswith("text/event-stream")
    for event in events[:-1]:
        exact(SpeechStreamAudioDelta, event)
    exact(SpeechStreamDone, events[-1])
    exact(UsageInfo, events[-1]["usage"])


@pytest.mark.timeout(20)
async def test_our_speech_request_is_the_sdks() -> None:
    async with FakeMistralSpeechServer() as fake:
        sdk = Mistral(api_key="test-key", server_url=fake.base_url)
        async with await sdk.audio.speech.complete_async(
            input="Hello there.",
            model="voxtral-mini-tts-2603",
            voice_id="gb_jane_neutral",
            response_format="pcm",
            stream=True,
        ) as stream:
            async for _ in stream:
                pass
        settings = MistralTTSService.Settings(voice="gb_jane_neutral")
        tts = MistralTTSService(api_key="test-key", base_url=fake.base_url, settings=settings)
        await run_test(tts, [TTSSpeakFrame("Hello there.")], params=PARAMS)
    sdk_body, our_body = fake.requests
    assert json.loads(json.dumps(our_body)) == sdk_body
    sdk_headers, our_headers = fake.headers
    for name in ("authorization", "accept", "content-type"):
        assert our_headers[name] == sdk_headers[name], name


# ---------------------------------------------------------------------------- realtime


def realtime_sdk(fake: FakeMistralRealtimeServer) -> Mistral:
    return Mistral(api_key="test-key", server_url=fake.url.replace("ws://", "http://"))


def validate_realtime(message: dict[str, Any]) -> str:
    """``message`` is one of the SDK's realtime events, with no field its model lacks."""
    event = parse_realtime_event(message)
    assert not isinstance(event, UnknownRealtimeEvent), event
    kind = str(message["type"])
    exact(_MESSAGE_MODELS[kind], message)
    if "session" in message:
        exact(RealtimeTranscriptionSession, message["session"])
    if kind == "transcription.done":
        exact(UsageInfo, message["usage"])
    return kind


@pytest.mark.timeout(20)
async def test_sdk_transcribes_through_the_fake_and_every_event_is_the_sdks() -> None:
    async with FakeMistralRealtimeServer() as fake:
        fake.transcripts.append("book a table")
        pcm = tone_pcm(1.0, 16000)

        async def audio() -> AsyncIterator[bytes]:
            for i in range(0, len(pcm), 3200):
                yield pcm[i : i + 3200]

        sdk = realtime_sdk(fake)
        events = [
            event
            async for event in sdk.audio.realtime.transcribe_stream(
                audio(),
                model="voxtral-mini-transcribe-realtime-2602",
                audio_format=AudioFormat(encoding="pcm_s16le", sample_rate=16000),
            )
        ]
    assert isinstance(events[-1], TranscriptionStreamDone)
    assert events[-1].text == "book a table"
    assert any(isinstance(e, TranscriptionStreamTextDelta) for e in events)
    kinds = {validate_realtime(m) for m in fake.sent}
    assert {"session.created", "session.updated", "transcription.text.delta"} <= kinds
    assert {"transcription.language", "transcription.done"} <= kinds


@pytest.mark.timeout(20)
async def test_our_realtime_session_and_messages_are_the_sdks() -> None:
    async with FakeMistralRealtimeServer() as fake:
        sdk = realtime_sdk(fake)
        connection = await sdk.audio.realtime.connect(
            model="voxtral-mini-transcribe-realtime-2602",
            audio_format=AudioFormat(encoding="pcm_mulaw", sample_rate=RATE),
            target_streaming_delay_ms=480,
            language="fr",
        )
        await connection.send_audio(b"\xff" * 800)
        fake.error_next = (400, "scripted refusal")  # the flush is answered with an error
        await connection.flush_audio()
        await connection.end_audio()
        events = [event async for event in connection.events()]
        sdk_count = len(fake.messages)
        assert any(isinstance(e, RealtimeTranscriptionError) for e in events)
        assert {validate_realtime(m) for m in fake.sent} >= {"error", "transcription.done"}

        settings = MistralSTTService.Settings(language=Language.FR)
        stt = MistralSTTService(
            api_key="test-key", base_url=fake.url, target_streaming_delay_ms=480, settings=settings
        )
        silence = bytes(1600)  # 100 ms of 16-bit silence: 800 µ-law bytes of 0xff
        frames = [
            SleepFrame(5.0, until=lambda: len(fake.sent) >= 4),
            *[InputAudioRawFrame(silence[i : i + 320], RATE) for i in range(0, 1600, 320)],
            UserStoppedSpeakingFrame(),
            SleepFrame(0.2),
        ]
        await run_test(stt, frames, params=PARAMS)
    ours, theirs = fake.messages[sdk_count:], fake.messages[:sdk_count]
    assert ours == theirs
    assert fake.queries[0] == fake.queries[1]
    assert fake.headers[1]["authorization"] == fake.headers[0]["authorization"]
