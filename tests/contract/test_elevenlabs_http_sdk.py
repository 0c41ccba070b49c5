"""The official ``elevenlabs`` SDK's ``text_to_speech.stream`` / ``stream_with_timestamps``
against the fake's HTTP text-to-speech, and ElevenLabsHttpTTSService's request against the SDK's.

Every line the fake streams from ``/stream/with-timestamps`` must validate strictly as the SDK's
``StreamingAudioChunkWithTimestampsResponse``; our service's query and body must be the ones the
SDK builds for the same options.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from elevenlabs import AsyncElevenLabs, VoiceSettings
from elevenlabs.core.api_error import ApiError
from elevenlabs.types import StreamingAudioChunkWithTimestampsResponse
from pydantic import TypeAdapter

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.elevenlabs.tts import ElevenLabsHttpTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsHTTPServer

from .replay import reply

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
CHUNK = TypeAdapter(StreamingAudioChunkWithTimestampsResponse)


class Recorded:
    """The raw lines of every ``/stream/with-timestamps`` answer, as the client read them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, response: Any) -> None:
        if response.url.path.endswith("/with-timestamps"):
            await response.aread()
            self.lines.extend(line for line in response.text.splitlines() if line)


def sdk(fake: FakeElevenLabsHTTPServer, key: str = "test-key") -> AsyncElevenLabs:
    return AsyncElevenLabs(api_key=key, base_url=fake.base_url)


async def test_sdk_streams_audio_and_timestamps_that_validate() -> None:
    recorded = Recorded()
    async with FakeElevenLabsHTTPServer(secs_per_char=0.01) as fake:
        audio = b"".join(
            [
                chunk
                async for chunk in sdk(fake).text_to_speech.stream(
                    "voice-1",
                    text="Hello from the SDK.",
                    model_id="eleven_flash_v2_5",
                    output_format="ulaw_8000",
                )
            ]
        )
        chunks = [
            chunk
            async for chunk in sdk(fake).text_to_speech.stream_with_timestamps(
                "voice-1", text="Hello again.", output_format="pcm_16000"
            )
        ]
        # The same request once more, through a client that keeps the raw lines to validate
        # strictly (the SDK builds its objects without validation and skips a bad line).
        async with httpx.AsyncClient(event_hooks={"response": [recorded]}) as client:
            timed = AsyncElevenLabs(api_key="test-key", base_url=fake.base_url, httpx_client=client)
            async for _ in timed.text_to_speech.stream_with_timestamps(
                "voice-1", text="Hello again.", output_format="pcm_16000"
            ):
                pass
    assert len(audio) == len("Hello from the SDK.") * 80  # 0.01 s per character, 8 kHz u-law
    assert chunks and all(c.audio_base_64 and c.alignment for c in chunks)
    spoken = [char for c in chunks if c.alignment for char in c.alignment.characters]
    assert "".join(spoken) == "Hello again."
    pcm = b"".join(base64.b64decode(c.audio_base_64) for c in chunks)
    assert len(pcm) == len("Hello again.") * 160 * 2
    assert recorded.lines
    for line in recorded.lines:
        CHUNK.validate_json(line, strict=True, by_alias=True)


async def test_sdk_sees_a_bad_key_refused() -> None:
    async with FakeElevenLabsHTTPServer() as fake:
        with pytest.raises(ApiError) as caught:
            async for _ in sdk(fake, "wrong").text_to_speech.stream("v", text="Hi."):
                pass
    assert caught.value.status_code == 401
    assert caught.value.body == {
        "detail": {"status": "invalid_api_key", "message": "Invalid API key"}
    }


async def test_our_request_is_the_sdks() -> None:
    settings = ElevenLabsHttpTTSService.Settings(
        voice="voice-1",
        model="eleven_turbo_v2_5",
        language="de-AT",
        stability=0.4,
        similarity_boost=0.7,
        speed=1.1,
        use_speaker_boost=True,
        optimize_streaming_latency=3,
        apply_text_normalization="on",
    )
    async with FakeElevenLabsHTTPServer() as fake:
        ours = ElevenLabsHttpTTSService(
            api_key="test-key", base_url=fake.base_url, settings=settings, enable_logging=False
        )
        _, up = await run_test(ours, reply("Guten Tag.", " Wie geht's?"), params=PHONE)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        async for _ in sdk(fake).text_to_speech.stream_with_timestamps(
            "voice-1",
            text="Wie geht's?",
            enable_logging=False,
            optimize_streaming_latency=3,
            output_format="ulaw_8000",
            model_id="eleven_turbo_v2_5",
            language_code="de",
            voice_settings=VoiceSettings(
                stability=0.4, similarity_boost=0.7, speed=1.1, use_speaker_boost=True
            ),
            previous_text="Guten Tag.",
            apply_text_normalization="on",
        ):
            pass
    _, second, from_sdk = fake.speech_requests
    assert second["path"] == from_sdk["path"] == "/v1/text-to-speech/voice-1/stream/with-timestamps"
    assert second["query"] == from_sdk["query"]
    assert second["body"] == from_sdk["body"]


async def test_the_audio_our_service_plays_is_what_the_sdk_gets() -> None:
    async with FakeElevenLabsHTTPServer(secs_per_char=0.01) as fake:
        ours = ElevenLabsHttpTTSService(api_key="test-key", voice_id="v", base_url=fake.base_url)
        down, _ = await run_test(ours, [TTSSpeakFrame("One two three.")], params=PHONE)
        chunks = [
            chunk
            async for chunk in sdk(fake).text_to_speech.stream_with_timestamps(
                "v", text="One two three.", output_format="ulaw_8000"
            )
        ]
    sdk_audio = b"".join(base64.b64decode(c.audio_base_64) for c in chunks)
    pcm = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert pcm == ulaw_to_pcm(sdk_audio)
    assert fake.speech_requests[0]["query"] == fake.speech_requests[1]["query"]
