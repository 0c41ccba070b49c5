"""SarvamHttpTTSService against FakeSarvamHTTPServer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ProtocolError
from callpipe.frames.frames import (
    ErrorFrame,
    LLMFullResponseEndFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.sarvam.tts import SarvamHttpTTSService, wav_pcm
from callpipe.testing import run_test
from callpipe.testing.fakes.sarvam import FakeSarvamHTTPServer
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import audio_secs, of, reply

Settings = SarvamHttpTTSService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeSarvamHTTPServer]:
    async with FakeSarvamHTTPServer(secs_per_word=0.1) as fake:
        yield fake


def make_tts(server: FakeSarvamHTTPServer, **kwargs: Any) -> SarvamHttpTTSService:
    return SarvamHttpTTSService(api_key="test-key", base_url=server.base_url, **kwargs)


async def test_each_sentence_is_a_request_at_the_line_rate(server: FakeSarvamHTTPServer) -> None:
    settings = Settings(language=Language.HI, temperature=0.5)
    down, up = await run_test(
        make_tts(server, settings=settings), reply("Namaste.", " Kaise ho?"), params=PARAMS
    )
    assert not of(up, ErrorFrame)
    assert server.requests[0] == {
        "text": "Namaste.",
        "model": "bulbul:v3",
        "language_code": "hi-IN",
        "speaker": "shubh",
        "speech_sample_rate": 8000,
        "enable_preprocessing": True,
        "pace": 1.0,
        "temperature": 0.5,
    }
    assert [r["text"] for r in server.requests] == ["Namaste.", "Kaise ho?"]
    assert server.headers[0]["api-subscription-key"] == "test-key"
    # The WAV header is not played: exactly the words' audio, at 8 kHz, each text after it.
    assert audio_secs(down) == pytest.approx(0.3)
    assert {f.sample_rate for f in of(down, TTSAudioRawFrame)} == {8000}
    texts = [(i, f.text) for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert [t for _, t in texts] == ["Namaste.", "Kaise ho?"]
    assert audio_secs(down[: texts[0][0]]) == pytest.approx(0.1)
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)


async def test_a_model_update_applies_from_the_next_sentence(server: FakeSarvamHTTPServer) -> None:
    frames = [
        *reply("One."),
        TTSUpdateSettingsFrame(delta=Settings(model="bulbul:v4-flash", pitch=0.1)),
        *reply("Two."),
    ]
    _, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    first, second = server.requests
    assert first["model"] == "bulbul:v3" and "pitch" not in first
    assert second["model"] == "bulbul:v4-flash" and second["pitch"] == 0.1
    assert second["speaker"] == "shubh_en_narration_gentle" and "temperature" not in second


async def test_a_rejected_key_is_fatal(server: FakeSarvamHTTPServer) -> None:
    tts = SarvamHttpTTSService(api_key="wrong", base_url=server.base_url)
    _, up = await run_test(tts, reply("Hello."), params=PARAMS)
    [error] = of(up, ErrorFrame)
    assert error.fatal and "SARVAM_API_KEY" in error.error and "403" in error.error


@pytest.mark.parametrize("answer", [b'{"request_id": "r1", "audios": []}', b"not json"])
async def test_an_answer_without_audio_is_reported_and_not_spoken(
    server: FakeSarvamHTTPServer, answer: bytes
) -> None:
    server.raw_answers.append(answer)
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PARAMS)
    assert [f.text for f in of(down, TTSTextFrame)] == ["How are you?"]
    assert abs(audio_secs(down) - 0.3) < 1e-6  # the second sentence's
    [error] = of(up, ErrorFrame)
    assert not error.fatal and "unreadable answer from Sarvam" in error.error


def test_wav_pcm_walks_to_the_samples() -> None:
    from callpipe.audio.wav import pcm_to_wav

    pcm = bytes(range(200))
    assert wav_pcm(pcm_to_wav(pcm, 16000)) == (16000, pcm)
    with pytest.raises(ProtocolError):
        wav_pcm(pcm)
