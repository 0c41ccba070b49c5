"""The official ``mistralai`` SDK against the Mistral fakes, and our services' requests against
the SDK's.

Speech: the SDK's ``audio.speech.complete_async`` (streamed and not) through
FakeMistralSpeechServer; every event the fake streams must validate as the SDK's models, with no
field they lack; our service's body and headers must be the SDK's for the same options.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.models import (
    SpeechResponse,
    SpeechStreamAudioDelta,
    SpeechStreamDone,
    UsageInfo,
)
from pydantic import BaseModel

from callpipe.frames.frames import TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.mistral.tts import MistralTTSService, sse_events
from callpipe.testing import run_test
from callpipe.testing.fakes.mistral import SPEECH_PATH, FakeMistralSpeechServer

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
