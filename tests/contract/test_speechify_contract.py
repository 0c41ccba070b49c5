"""The official ``speechify-api`` SDK's ``audio.stream_with_timestamps`` against
FakeSpeechifyServer, and SpeechifyHttpTTSService's request against the SDK's.

Every event the fake streams must validate strictly as the SDK's model for its ``type``
(``speech.chunk``, ``speech.done``, ``speech.error``), with no field the models lack (they allow
extras, so that is checked apart); the fake's error bodies must be the SDK's ``Error`` envelope;
our service's headers and body must be the ones the SDK sends for the same options.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from speechify import AsyncSpeechify
from speechify.errors import BadRequestError, UnauthorizedError
from speechify.types import (
    Error,
    GetStreamOptionsRequest,
    NestedChunk,
    SpeechStreamEvent_SpeechChunk,
    SpeechStreamEvent_SpeechDone,
    SpeechStreamEvent_SpeechError,
)

from callpipe.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame, TTSTextFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.speechify.tts import SPEECHIFY_API_VERSION, SpeechifyHttpTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.speechify import FakeSpeechifyServer

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
MODELS: dict[str, type[BaseModel]] = {
    "speech.chunk": SpeechStreamEvent_SpeechChunk,
    "speech.done": SpeechStreamEvent_SpeechDone,
    "speech.error": SpeechStreamEvent_SpeechError,
}


class Recorded:
    """The ``(event, data)`` of every streamed answer's events, as the client read them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def __call__(self, response: httpx.Response) -> None:
        if response.url.path.endswith("/with-timestamps") and response.status_code == 200:
            await response.aread()
            for block in response.text.split("\n\n"):
                fields = dict(line.split(": ", 1) for line in block.splitlines() if line)
                if fields:
                    self.events.append((fields["event"], fields["data"]))


def no_extras(model: BaseModel) -> None:
    """``model`` and the models inside it carry only fields the SDK declares."""
    assert not model.model_extra, f"{type(model).__name__}: {model.model_extra}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, BaseModel):
                no_extras(item)


def validate(event: str, data: str) -> BaseModel:
    payload = json.loads(data)
    assert payload["type"] == event  # the payload names its event, as the SDK relies on
    model = MODELS[event].model_validate(payload, strict=True)
    no_extras(model)
    return model


def sdk(fake: FakeSpeechifyServer, key: str = "test-key", **kwargs: Any) -> AsyncSpeechify:
    return AsyncSpeechify(base_url=fake.base_url, token=key, max_retries=0, **kwargs)


async def test_sdk_streams_events_that_validate() -> None:
    recorded = Recorded()
    async with FakeSpeechifyServer(secs_per_word=0.1, chunk_secs=0.02) as fake:
        fake.error_after = None
        async with httpx.AsyncClient(event_hooks={"response": [recorded]}) as client:
            events = [
                event
                async for event in sdk(fake, httpx_client=client).audio.stream_with_timestamps(
                    input="Streaming well-known words.",
                    voice_id="geffen_32",
                    model="simba-3.2",
                    output_format="pcm_16000",
                    language="en-US",
                )
            ]
            fake.error_after = 1
            failed = [
                event
                async for event in sdk(fake, httpx_client=client).audio.stream_with_timestamps(
                    input="It breaks.", voice_id="geffen_32", output_format="ulaw_8000"
                )
            ]
    chunks = [e for e in events if isinstance(e, SpeechStreamEvent_SpeechChunk)]
    pcm = b"".join(base64.b64decode(c.audio) for c in chunks if c.audio)
    assert len(pcm) == int(0.3 * 16000) * 2
    marks: list[NestedChunk] = [m for c in chunks for m in c.speech_marks or []]
    assert [m.value for m in marks] == ["Streaming", "well", "-", "known", "words."]
    assert [(m.start, m.end) for m in marks][1:4] == [(10, 14), (14, 15), (15, 20)]
    assert chunks[-1].audio is None and chunks[-1].speech_marks  # marks trail their audio
    done = events[-1]
    assert isinstance(done, SpeechStreamEvent_SpeechDone) and done.audio_duration_ms == 300
    assert done.billable_characters_count == len("Streaming well-known words.")
    assert isinstance(failed[-1], SpeechStreamEvent_SpeechError)
    assert failed[-1].error.code == "internal_error"
    assert len(recorded.events) == len(events) + len(failed)  # the SDK dropped no event
    for event, data in recorded.events:
        validate(event, data)


async def test_sdk_sees_the_fakes_refusals() -> None:
    async with FakeSpeechifyServer() as fake:
        with pytest.raises(UnauthorizedError) as refused:
            async for _ in sdk(fake, "wrong").audio.stream_with_timestamps(
                input="Hi.", voice_id="v"
            ):
                pass
        with pytest.raises(BadRequestError) as legacy:
            async for _ in sdk(fake).audio.stream_with_timestamps(
                input="Hi.", voice_id="v", model="simba-english"
            ):
                pass
        with pytest.raises(BadRequestError) as invalid:
            async for _ in sdk(fake).audio.stream_with_timestamps(
                input="Hi.", voice_id="v", output_format="wav_24000"
            ):
                pass
    assert Error.model_validate(refused.value.body).error.code == "unauthorized"
    assert Error.model_validate(legacy.value.body).error.code == "speech_marks_unsupported"
    error = Error.model_validate(invalid.value.body).error
    assert error.code == "validation_failed" and error.fields and "output_format" in error.fields


async def test_our_request_is_the_sdks() -> None:
    settings = SpeechifyHttpTTSService.Settings(
        voice="kristy",
        model="simba-3.2",
        language="fr",
        loudness_normalization=True,
        text_normalization=False,
        safety_identifier="u-1234",
    )
    async with FakeSpeechifyServer() as fake:
        ours = SpeechifyHttpTTSService(
            api_key="test-key", base_url=fake.base_url, settings=settings
        )
        _, up = await run_test(ours, [TTSSpeakFrame("Bonjour.")], params=PHONE)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        async for _ in sdk(fake, version=SPEECHIFY_API_VERSION).audio.stream_with_timestamps(
            input="Bonjour.",
            voice_id="kristy",
            model="simba-3.2",
            language="fr-FR",
            output_format="pcm_8000",
            options=GetStreamOptionsRequest(loudness_normalization=True, text_normalization=False),
            # Not yet a parameter of this SDK release; the API's version we pin takes it.
            request_options={"additional_body_parameters": {"safety_identifier": "u-1234"}},
        ):
            pass
    ours_body, sdk_body = fake.requests
    assert ours_body == sdk_body
    ours_headers, sdk_headers = fake.headers
    for name in ("authorization", "speechify-version", "content-type"):
        assert ours_headers[name] == sdk_headers[name], name
    assert ours_headers["speechify-version"] == SPEECHIFY_API_VERSION


async def test_what_our_service_plays_is_what_the_sdk_gets() -> None:
    text = "One well-known word."
    async with FakeSpeechifyServer(secs_per_word=0.1, chunk_secs=0.02) as fake:
        ours = SpeechifyHttpTTSService(api_key="test-key", base_url=fake.base_url)
        down, _ = await run_test(ours, [TTSSpeakFrame(text)], params=PHONE)
        events = [
            event
            async for event in sdk(fake).audio.stream_with_timestamps(
                input=text, voice_id="geffen_32", output_format="pcm_8000"
            )
        ]
    chunks = [e for e in events if isinstance(e, SpeechStreamEvent_SpeechChunk)]
    sdk_audio = b"".join(base64.b64decode(c.audio) for c in chunks if c.audio)
    played = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert sdk_audio and played == sdk_audio
    # The words we pass on are the text's, spanned by the SDK's marks.
    spans = [(m.start, m.end) for c in chunks for m in c.speech_marks or []]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == text.split()
    assert "".join(text[a:b] for a, b in spans) == text.replace(" ", "")
