"""The official ``smallestai`` SDK's clients against FakeSmallestServer, and our services'
requests against the SDK's.

The SDK's Pulse socket client (``AsyncSmallestAI(...).waves.speech_to_text.stream``, its
environment pointed at the fake) and its Lightning streaming client (``WavesStreamingTTS``, its
``ws_url`` pointed at the fake) speak through the fake; every message the fake sends must
validate as the SDK's ``TranscriptionEvent`` / ``TtsResponseMessage`` with no field the model
lacks. Our STT socket's path and query must be what the SDK opens for the same options, and our
TTS requests must be ``TtsRequestMessage``\\ s agreeing with the payloads the SDK builds (plus
the options Pipecat 1.14 sends that the SDK's model does not name).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel
from smallestai import AsyncSmallestAI
from smallestai.environment import SmallestAIEnvironment
from smallestai.waves import TTSConfig, WavesStreamingTTS
from smallestai.waves.speech_to_text.types import CloseStream, FinalizeSignal, TranscriptionEvent
from smallestai.waves.tts.types import TtsRequestMessage, TtsResponseMessage
from tests.unit.services.helpers import caller_audio, reply

from callpipe.frames.frames import ErrorFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.smallest.stt import SmallestSTTService
from callpipe.services.smallest.tts import SmallestTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.smallest import STT_PATH, TTS_PATH, FakeSmallestServer
from callpipe.transcriptions.language import Language

KEY = "test-key"
PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
PIPECAT_TTS_OPTIONS = frozenset({"output_format", "math_notation", "content_filter"})
"""Request fields Pipecat 1.14 sends that the SDK's ``TtsRequestMessage`` does not name."""


def _fields(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def _check(message: dict[str, Any], model: type[BaseModel]) -> None:
    assert set(message) <= _fields(model), set(message) - _fields(model)
    model.model_validate(message)


def _sdk_client(fake: FakeSmallestServer) -> AsyncSmallestAI:
    http = fake.url.replace("ws://", "http://")
    env = SmallestAIEnvironment(atoms=http, waves=http, waves_ws=fake.url, payment=http)
    return AsyncSmallestAI(api_key=KEY, environment=env)


async def test_sdk_pulse_client_against_the_fake_and_our_query() -> None:
    settings = SmallestSTTService.Settings(language=Language.EN_US, keywords="NVIDIA:2")
    ours = SmallestSTTService(api_key=KEY, sample_rate=16000, settings=settings)
    query = dict(parse_qsl(urlsplit(ours.socket_url()).query))
    async with FakeSmallestServer() as fake:
        fake.transcripts.append("book a table")
        client = _sdk_client(fake)
        options: Any = {"additional_query_parameters": query}
        async with client.waves.speech_to_text.stream(request_options=options) as socket:
            pcm = tone_pcm(1.0, 16000)
            for i in range(0, len(pcm), 3200):
                await socket.send_audio_chunk_out(pcm[i : i + 3200])
            await socket.send_finalize_signal(FinalizeSignal(type="finalize"))
            await socket.send_close_stream(CloseStream(type="close_stream"))
            events = [event async for event in socket]
        assert all(isinstance(e, TranscriptionEvent) for e in events)
        finals = [e for e in events if isinstance(e, TranscriptionEvent) and e.is_final]
        assert finals[0].transcript == "book a table" and finals[0].from_finalize
        assert finals[-1].is_last
        assert any(isinstance(e, TranscriptionEvent) and not e.is_final for e in events)
        for message in fake.stt_sent:
            _check(message, TranscriptionEvent)
        assert fake.controls == [
            FinalizeSignal(type="finalize").model_dump(),
            CloseStream(type="close_stream").model_dump(),
        ]
        # The SDK opened exactly the socket our service opens for these settings.
        sdk_path = fake.paths[0]
        assert sdk_path == STT_PATH + "?" + urlsplit(ours.socket_url()).query
        assert fake.headers[0]["authorization"] == f"Bearer {KEY}"

        # Our service against the same fake: its query is one the fake (and so the SDK's
        # documented contract) accepts, and its results validate too.
        stt = SmallestSTTService(api_key=KEY, base_url=fake.url)
        _, up = await run_test(stt, caller_audio(0.6, loud=True), params=PHONE)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        assert urlsplit(fake.paths[-1]).path == STT_PATH
        for message in fake.stt_sent:
            _check(message, TranscriptionEvent)


async def test_sdk_streaming_tts_against_the_fake() -> None:
    async with FakeSmallestServer(tts_secs_per_word=0.05) as fake:
        config = TTSConfig(
            voice_id="meher", api_key=KEY, model="lightning_v3.1_pro", sample_rate=8000
        )
        tts = WavesStreamingTTS(config)
        tts.ws_url = fake.url + TTS_PATH

        def speak() -> list[bytes]:
            chunks = iter(["Hello there,", " how are", " you today?"])
            return list(tts.synthesize_streaming(chunks))

        audio = await asyncio.to_thread(speak)
        assert sum(len(chunk) for chunk in audio) == 6 * int(0.05 * 8000) * 2  # six words
        for request in fake.tts_requests:
            _check(request, TtsRequestMessage)
        for message in fake.tts_sent:
            _check(message, TtsResponseMessage)
        assert fake.tts_sent[-1]["status"] == "complete"


async def test_our_tts_requests_are_the_sdks() -> None:
    settings = SmallestTTSService.Settings(
        model="lightning_v3.1", voice="sophia", language=Language.HI, speed=1.1
    )
    config = TTSConfig(
        voice_id="sophia",
        api_key=KEY,
        model="lightning_v3.1",
        language="hi",
        sample_rate=8000,
        speed=1.1,
        max_buffer_flush_ms=300,
    )
    sdk = WavesStreamingTTS(config)
    async with FakeSmallestServer() as fake:
        ours = SmallestTTSService(
            api_key=KEY, base_url=fake.url, settings=settings, max_buffer_delay_ms=300
        )
        _, up = await run_test(ours, reply("Namaste.", " Kaise ho?"), params=PHONE)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        assert fake.paths == [TTS_PATH]
        requests = fake.tts_requests
        for request in requests:
            _check(
                {k: v for k, v in request.items() if k not in PIPECAT_TTS_OPTIONS},
                TtsRequestMessage,
            )
            assert set(request) - _fields(TtsRequestMessage) <= PIPECAT_TTS_OPTIONS
        expected = [
            sdk._create_payload("Namaste. ", continue_stream=True),
            sdk._create_payload("Kaise ho? ", continue_stream=True),
            sdk._create_payload("", continue_stream=False, flush=True),
        ]
        for sent, built in zip(requests, expected, strict=True):
            shared = set(sent) & set(built)
            assert shared >= {"voice_id", "model", "text", "language", "sample_rate", "speed"}
            assert {k: sent[k] for k in shared} == {k: built[k] for k in shared}
        for message in fake.tts_sent:
            _check(message, TtsResponseMessage)
        assert json.loads(json.dumps(requests[-1]))["flush"] is True
