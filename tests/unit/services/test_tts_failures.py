"""Speech that failed is not recorded as spoken: a sentence whose HTTP request failed (an error
answer, a connection dropped part-way) and a socket reply the provider gave up on leave only
what the caller heard in the ``TTSTextFrame``\\ s the assistant's context is built from."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import Frame, TTSAudioRawFrame, TTSTextFrame
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.hume.tts import HumeTTSService
from callpipe.services.openai.tts import OpenAITTSService
from callpipe.services.rime.tts import RimeTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.fakes.hume import FakeHumeServer
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.fakes.rime import FakeRimeServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE, errors, reply

SECS_PER_WORD = 0.1


class CuttingHumeServer(FakeHumeServer):
    """The Hume fake, whose answer can be cut off (the connection aborted) after
    ``cut_after_lines`` lines, once."""

    cut_after_lines: int | None = None

    async def _lines(self, body: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        sent = 0
        async for line in super()._lines(body):
            if self.cut_after_lines is not None and sent == self.cut_after_lines:
                self.cut_after_lines = None
                raise ConnectionAbortedError("scripted cut")
            yield line
            sent += 1


@pytest.fixture
async def server() -> AsyncIterator[CuttingHumeServer]:
    async with CuttingHumeServer(secs_per_word=SECS_PER_WORD, chunk_secs=0.04) as fake:
        yield fake


def hume(server: FakeHumeServer, *, timed: bool) -> HumeTTSService:
    """Hume times words on Octave 2 only; an acting direction selects Octave 1 (no timing)."""
    params = None if timed else HumeTTSService.InputParams(description="calm")
    return HumeTTSService(
        api_key="test-key", base_url=server.base_url, voice_id="voice-1", params=params
    )


def spoken(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TTSTextFrame)]


@pytest.mark.parametrize("timed", [False, True])
async def test_a_sentence_refused_by_the_provider_is_not_recorded_as_spoken(
    server: CuttingHumeServer, timed: bool
) -> None:
    server.statuses.extend([200, 400])
    down, up = await run_test(
        hume(server, timed=timed), reply("Hi there.", " How are you?"), params=PHONE
    )
    assert len(errors(up)) == 1
    assert len(server.requests) == 2
    assert spoken(down) == (["Hi", "there."] if timed else ["Hi there."])


async def test_a_failed_first_sentence_leaves_only_the_second() -> None:
    async with CuttingHumeServer(secs_per_word=SECS_PER_WORD) as fake:
        fake.statuses.extend([400])
        down, up = await run_test(
            hume(fake, timed=False), reply("Hi there.", " How are you?"), params=PHONE
        )
    assert len(errors(up)) == 1
    assert spoken(down) == ["How are you?"]


async def test_a_sentence_cut_off_part_way_keeps_only_the_words_heard(
    server: CuttingHumeServer,
) -> None:
    # The fake sends a sentence's three word times ahead of its audio (40 ms chunks): cut
    # after the times and 0.16 s of audio, i.e. during the second word.
    server.cut_after_lines = 3 + 4
    down, up = await run_test(hume(server, timed=True), reply("One two three."), params=PHONE)
    assert len(errors(up)) == 1
    heard = sum(len(f.audio) for f in down if isinstance(f, TTSAudioRawFrame)) / 2 / 8000
    assert 0.15 < heard < 0.17
    assert spoken(down) == ["One"]


async def test_without_word_timing_a_sentence_cut_off_part_way_is_left_out(
    server: CuttingHumeServer,
) -> None:
    # As for a barge-in mid-sentence: a sentence's text counts once all its audio was played.
    server.cut_after_lines = 2
    down, up = await run_test(
        hume(server, timed=False), reply("Hi there.", " How are you?"), params=PHONE
    )
    assert len(errors(up)) == 1
    assert spoken(down) == ["How are you?"]


async def test_openai_a_refused_sentence_is_not_recorded_as_spoken() -> None:
    async with FakeOpenAIServer(speech_secs_per_word=0.1) as fake:
        fake.speech_replies.extend([200, 400])
        tts = OpenAITTSService(api_key="test-key", base_url=fake.base_url, voice="nova")
        down, up = await run_test(tts, reply("Hi there.", " How are you?"), params=PHONE)
    assert len(errors(up)) == 1
    assert spoken(down) == ["Hi there."]


# ---------------------------------------------------------------------- sockets


async def test_cartesia_error_leaves_no_text_of_the_reply() -> None:
    async with FakeCartesiaServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        fake.error_next = "Invalid voice"
        tts = CartesiaTTSService(api_key="test-key", voice_id="voice-1", url=fake.url)
        down, up = await run_test(tts, reply("Hello there."), params=PHONE)
    assert errors(up)
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
    assert spoken(down) == []


async def test_rime_error_leaves_no_text_of_the_reply() -> None:
    async with FakeRimeServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        fake.error_next = "text longer than 1000 characters"
        tts = RimeTTSService(api_key="test-key", voice_id="astra", url=fake.url)
        down, up = await run_test(tts, reply("Hello there."), params=PHONE)
    assert errors(up)
    assert spoken(down) == []


async def test_cartesia_dropped_socket_keeps_only_the_words_heard() -> None:
    # Cartesia's times come ahead of the audio; the socket drops after 0.16 s of it.
    async with FakeCartesiaServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        fake.drop_after_chunks = 4
        tts = CartesiaTTSService(api_key="test-key", voice_id="voice-1", url=fake.url)
        frames = [*reply("One two three four."), SleepFrame(0.3), *reply("After drop.")]
        down, _ = await run_test(tts, frames, params=PHONE)
    assert spoken(down) == ["One", "After", "drop."]


async def test_rime_dropped_socket_keeps_only_the_words_heard() -> None:
    async with FakeRimeServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        fake.drop_after_chunks = 4
        tts = RimeTTSService(api_key="test-key", voice_id="astra", url=fake.url)
        frames = [*reply("One two three four."), SleepFrame(0.3), *reply("After drop.")]
        down, _ = await run_test(tts, frames, params=PHONE)
    assert spoken(down) == ["One", "After", "drop."]
