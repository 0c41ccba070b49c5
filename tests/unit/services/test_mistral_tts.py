"""MistralTTSService against the fake's ``POST /v1/audio/speech``: the request, float PCM at
24 kHz made the line's 16-bit audio, barge-in, errors and settings."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSUpdateSettingsFrame
from callpipe.services.mistral.tts import MistralTTSService, float32_to_pcm16
from callpipe.testing import run_test
from callpipe.testing.fakes.mistral import FakeMistralSpeechServer

from .helpers import (
    PHONE,
    audio_secs,
    barge_in,
    errors,
    eventually,
    interruption_at,
    reply,
    spoken,
)

SECS_PER_WORD = 0.1


@pytest.fixture
async def server() -> AsyncIterator[FakeMistralSpeechServer]:
    async with FakeMistralSpeechServer(secs_per_word=SECS_PER_WORD, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeMistralSpeechServer, **kwargs: Any) -> MistralTTSService:
    return MistralTTSService(api_key="test-key", base_url=server.base_url, **kwargs)


async def test_phone_call_gets_the_speech_as_8khz_pcm(server: FakeMistralSpeechServer) -> None:
    settings = MistralTTSService.Settings(voice="gb_jane_neutral")
    down, up = await run_test(
        make_tts(server, settings=settings), reply("Hi there.", " How are you?"), params=PHONE
    )
    assert not errors(up)
    assert server.requests == [
        {
            "input": text,
            "model": "voxtral-mini-tts-2603",
            "voice_id": "gb_jane_neutral",
            "response_format": "pcm",
            "stream": True,
        }
        for text in ("Hi there.", "How are you?")
    ]
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert server.headers[0]["accept"] == "text/event-stream"
    frames = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in frames} == {8000}
    assert abs(audio_secs(down) - 5 * SECS_PER_WORD) < 0.01
    # The tone is loud: float samples read as 16-bit would be noise, and unscaled ones silence.
    peak = max(max(abs(s) for (s,) in struct.iter_unpack("<h", f.audio)) for f in frames)
    assert 8000 < peak <= 32767
    assert spoken(down) == ["Hi there.", "How are you?"]


def test_float_samples_become_clipped_16_bit() -> None:
    floats = struct.pack("<4f", 0.5, -1.0, 1.5, -2.0)
    assert struct.unpack("<4h", float32_to_pcm16(floats)) == (16383, -32767, 32767, -32767)


async def test_no_voice_is_left_out_and_settings_change_the_next_sentence(
    server: FakeMistralSpeechServer,
) -> None:
    delta = MistralTTSService.Settings(voice="fr_marie_happy", model="voxtral-tts-2")
    frames = [TTSSpeakFrame("First one."), TTSUpdateSettingsFrame(delta=delta)]
    frames.append(TTSSpeakFrame("Second one."))
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    first, second = server.requests
    assert "voice_id" not in first and first["model"] == "voxtral-mini-tts-2603"
    assert second["voice_id"] == "fr_marie_happy" and second["model"] == "voxtral-tts-2"


async def test_barge_in_closes_the_stream(server: FakeMistralSpeechServer) -> None:
    server.chunk_delay = 0.02
    down = await barge_in(
        make_tts(server), params=PHONE, words=60, pause=0.1, next_reply="New reply."
    )
    await eventually(lambda: server.cancelled_streams)
    assert server.cancelled_streams == 1
    cut = interruption_at(down)
    assert audio_secs(down[:cut]) < 60 * SECS_PER_WORD / 2
    assert abs(audio_secs(down[cut:]) - 2 * SECS_PER_WORD) < 0.01


async def test_a_rejected_key_is_fatal_and_stops_requests(
    server: FakeMistralSpeechServer,
) -> None:
    tts = MistralTTSService(api_key="wrong", base_url=server.base_url)
    down, up = await run_test(tts, reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "401" in error.error and "MISTRAL_API_KEY" in error.error
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
    assert len(server.headers) == 1  # the second sentence was not sent with the same key


async def test_a_server_error_twice_is_reported_and_the_next_sentence_spoken(
    server: FakeMistralSpeechServer,
) -> None:
    server.statuses.extend([503, 503])
    down, up = await run_test(make_tts(server), reply("Lost.", " Two words."), params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "503" in error.error
    assert spoken(down) == ["Two words."]


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="MISTRAL_API_KEY"):
        MistralTTSService()
    monkeypatch.setenv("MISTRAL_API_KEY", "from-env")
    monkeypatch.setenv("CALLPIPE_MISTRAL_API_URL", "http://127.0.0.1:9")
    tts = MistralTTSService()
    assert tts.base_url == "http://127.0.0.1:9"
