"""The official ``hume`` SDK's ``tts.synthesize_json_streaming`` against FakeHumeServer, and
HumeTTSService's request against the SDK's.

Every line the fake streams must validate strictly as the SDK's ``SnippetAudioChunk`` or
``TimestampMessage`` (by its ``type``), with no field the models lack (they allow extras, so
that is checked apart); the fake's error bodies must be what the SDK parses them as; our
service's headers and body must be the ones the SDK sends for the same options.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from hume import AsyncHumeClient
from hume.core.api_error import ApiError
from hume.tts import (
    FormatPcm,
    PostedUtterance,
    PostedUtteranceVoiceWithId,
    SnippetAudioChunk,
    TimestampMessage,
)
from hume.tts.errors import UnprocessableEntityError
from hume.tts.types import HttpValidationError
from pydantic import BaseModel

from callpipe.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.hume.tts import HumeTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.hume import FakeHumeServer

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
MODELS: dict[str, type[BaseModel]] = {"audio": SnippetAudioChunk, "timestamp": TimestampMessage}


class Recorded:
    """The raw lines of every streamed answer, as the client read them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, response: httpx.Response) -> None:
        if response.url.path.endswith("/stream/json") and response.status_code == 200:
            await response.aread()
            self.lines.extend(line for line in response.text.splitlines() if line)


def no_extras(model: BaseModel) -> None:
    """``model`` and the models inside it carry only fields the SDK declares."""
    assert not model.model_extra, f"{type(model).__name__}: {model.model_extra}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            no_extras(value)


def validate(line: str) -> BaseModel:
    data = json.loads(line)
    model = MODELS[data["type"]].model_validate(data, strict=True)
    no_extras(model)
    return model


def sdk(fake: FakeHumeServer, key: str = "test-key", **kwargs: Any) -> AsyncHumeClient:
    return AsyncHumeClient(api_key=key, base_url=fake.base_url, **kwargs)


def utterance(text: str, voice: str = "voice-1", **kwargs: Any) -> PostedUtterance:
    return PostedUtterance(text=text, voice=PostedUtteranceVoiceWithId(id=voice), **kwargs)


async def test_sdk_streams_audio_and_timestamps_that_validate() -> None:
    recorded = Recorded()
    async with FakeHumeServer(secs_per_word=0.1) as fake:
        async with httpx.AsyncClient(event_hooks={"response": [recorded]}) as client:
            chunks = [
                chunk
                async for chunk in sdk(fake, httpx_client=client).tts.synthesize_json_streaming(
                    utterances=[utterance("Hello from the SDK.", trailing_silence=0.2)],
                    format=FormatPcm(type="pcm"),
                    instant_mode=True,
                    version="2",
                    include_timestamp_types=["word"],
                )
            ]
            # Octave 1 without instant mode: no timing, and the transcription on each chunk.
            untimed = [
                chunk
                async for chunk in sdk(fake, httpx_client=client).tts.synthesize_json_streaming(
                    utterances=[utterance("Again.", description="slowly")], version="1"
                )
            ]
    audio = [c for c in chunks if isinstance(c, SnippetAudioChunk)]
    stamps = [c for c in chunks if isinstance(c, TimestampMessage)]
    pcm = b"".join(base64.b64decode(c.audio) for c in audio)
    assert len(pcm) == int(0.4 * 48000) * 2 + int(0.2 * 48000) * 2  # 48 kHz, then the silence
    assert [c.chunk_index for c in audio] == list(range(len(audio)))
    assert [c.is_last_chunk for c in audio][-2:] == [False, True]
    assert [s.timestamp.text for s in stamps] == ["Hello", "from", "the", "SDK."]
    assert [(s.timestamp.time.begin, s.timestamp.time.end) for s in stamps][-1] == (300, 400)
    assert untimed and all(isinstance(c, SnippetAudioChunk) for c in untimed)
    assert len(recorded.lines) == len(chunks) + len(untimed)  # the SDK dropped no line
    models = [validate(line) for line in recorded.lines]
    assert isinstance(models[-1], SnippetAudioChunk) and models[-1].transcribed_text == "Again."


async def test_sdk_sees_the_fakes_refusals() -> None:
    async with FakeHumeServer() as fake:
        with pytest.raises(ApiError) as caught:
            async for _ in sdk(fake, "wrong").tts.synthesize_json_streaming(
                utterances=[utterance("Hi.")]
            ):
                pass
        assert caught.value.status_code == 401
        with pytest.raises(UnprocessableEntityError) as invalid:
            async for _ in sdk(fake).tts.synthesize_json_streaming(
                utterances=[utterance("Hi.", speed=9.0)], instant_mode=True
            ):
                pass
    body = invalid.value.body
    assert isinstance(body, HttpValidationError) and body.detail
    assert body.detail[0].loc == ["body", "utterances", 0, "speed"]


@pytest.mark.parametrize("directed", [False, True], ids=["octave-2", "acting-directions"])
async def test_our_request_is_the_sdks(directed: bool) -> None:
    options: dict[str, Any] = {"speed": 1.25, "trailing_silence": 0.3}
    if directed:
        options["description"] = "whispering"
    settings = HumeTTSService.Settings(voice="voice-7", temperature=0.6, **options)
    async with FakeHumeServer() as fake:
        ours = HumeTTSService(
            api_key="test-key", base_url=fake.base_url, settings=settings, voice_provider="HUME_AI"
        )
        _, up = await run_test(ours, [TTSSpeakFrame("Good morning.")], params=PHONE)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        timing: dict[str, Any] = {} if directed else {"include_timestamp_types": ["word"]}
        async for _ in sdk(fake).tts.synthesize_json_streaming(
            utterances=[
                PostedUtterance(
                    text="Good morning.",
                    voice=PostedUtteranceVoiceWithId(id="voice-7", provider="HUME_AI"),
                    **options,
                )
            ],
            format=FormatPcm(type="pcm"),
            instant_mode=True,
            version="1" if directed else "2",
            temperature=0.6,
            **timing,
        ):
            pass
    ours_body, sdk_body = fake.requests
    assert ours_body == sdk_body
    ours_headers, sdk_headers = fake.headers
    assert ours_headers["x-hume-api-key"] == sdk_headers["x-hume-api-key"] == "test-key"
    assert ours_headers["content-type"] == sdk_headers["content-type"] == "application/json"


async def test_the_audio_our_service_plays_is_what_the_sdk_gets() -> None:
    async with FakeHumeServer(secs_per_word=0.1) as fake:
        ours = HumeTTSService(
            api_key="test-key", voice_id="v", base_url=fake.base_url, sample_rate=48000
        )
        down, _ = await run_test(ours, [TTSSpeakFrame("One two three.")], params=PHONE)
        chunks = [
            chunk
            async for chunk in sdk(fake).tts.synthesize_json_streaming(
                utterances=[utterance("One two three.", voice="v")],
                format=FormatPcm(type="pcm"),
                instant_mode=True,
                version="2",
                include_timestamp_types=["word"],
            )
        ]
    sdk_audio = b"".join(base64.b64decode(c.audio) for c in chunks if c.type == "audio")
    assert sdk_audio and b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame)) == (
        sdk_audio
    )
