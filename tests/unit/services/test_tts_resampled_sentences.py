"""An HTTP TTS service whose provider speaks at another rate than the call's (Hume: 48 kHz,
resampled to 8 kHz): the resampler's held-back tail goes out at each sentence's end, so the
sentence's text, or last word, follows all of its audio rather than the next sentence's first
chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callpipe.frames.frames import Frame, TTSAudioRawFrame, TTSTextFrame
from callpipe.services.hume.tts import HumeTTSService
from callpipe.services.openai.tts import OpenAITTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.hume import FakeHumeServer
from callpipe.testing.fakes.openai import FakeOpenAIServer

from .helpers import PHONE, errors, reply

SECS_PER_WORD = 0.1


@pytest.fixture
async def server() -> AsyncIterator[FakeHumeServer]:
    async with FakeHumeServer(secs_per_word=SECS_PER_WORD, chunk_secs=0.04) as fake:
        yield fake


def audio_before_each_text(frames: list[Frame]) -> list[tuple[str, float]]:
    """Each TTSTextFrame's text with the seconds of audio that went out before it."""
    out: list[tuple[str, float]] = []
    secs = 0.0
    for frame in frames:
        if isinstance(frame, TTSAudioRawFrame):
            secs += len(frame.audio) / 2 / frame.sample_rate
        elif isinstance(frame, TTSTextFrame):
            out.append((frame.text, round(secs, 4)))
    return out


@pytest.mark.parametrize("timed", [False, True])
async def test_a_sentence_s_text_follows_all_of_its_resampled_audio(
    server: FakeHumeServer, timed: bool
) -> None:
    params = None if timed else HumeTTSService.InputParams(description="calm")
    tts = HumeTTSService(
        api_key="test-key", base_url=server.base_url, voice_id="voice-1", params=params
    )
    down, up = await run_test(tts, reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    got = audio_before_each_text(down)
    # 48 kHz → 8 kHz holds back ~28 ms: without the flush the sentence's text would leave
    # 28 ms before its end, or its last word wait for the next sentence's first audio.
    if not timed:
        assert got == [("Hi there.", 0.2), ("How are you?", 0.5)]
        return
    assert [word for word, _ in got] == ["Hi", "there.", "How", "are", "you?"]
    ends = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert all(secs >= end for (_, secs), end in zip(got, ends, strict=True))
    assert got[1] == ("there.", 0.2)  # before any audio of "How are you?"


async def test_openai_s_24khz_speech_is_flushed_at_each_sentence_end() -> None:
    async with FakeOpenAIServer(speech_secs_per_word=SECS_PER_WORD) as fake:
        tts = OpenAITTSService(api_key="test-key", base_url=fake.base_url, voice="nova")
        down, up = await run_test(tts, reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    assert audio_before_each_text(down) == [("Hi there.", 0.2), ("How are you?", 0.5)]
