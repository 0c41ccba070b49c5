"""SpeechifyHttpTTSService against the fake's ``/v1/audio/stream/with-timestamps``: the request,
PCM at the line's rate, words joined from their marks and timed per reply, barge-in, errors and
settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    LLMFullResponseEndFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.speechify.tts import SpeechifyHttpTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.speechify import FakeSpeechifyServer

from .helpers import (
    PHONE,
    WIDE,
    assert_words_follow_audio,
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
async def server() -> AsyncIterator[FakeSpeechifyServer]:
    async with FakeSpeechifyServer(secs_per_word=SECS_PER_WORD, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeSpeechifyServer, **kwargs: Any) -> SpeechifyHttpTTSService:
    return SpeechifyHttpTTSService(api_key="test-key", base_url=server.base_url, **kwargs)


async def test_phone_call_asks_for_8khz_pcm_and_each_word_follows_its_audio(
    server: FakeSpeechifyServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    assert server.requests == [
        {"input": text, "voice_id": "geffen_32", "model": "simba-3.5", "output_format": "pcm_8000"}
        for text in ("Hi there.", "How are you?")
    ]
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert server.headers[0]["speechify-version"] == "2026-09-30"
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    assert abs(audio_secs(down) - 5 * SECS_PER_WORD) < 0.002
    assert spoken(down) == ["Hi", "there.", "How", "are", "you?"]
    # Each word leaves once the audio up to its end went out; the second sentence's marks count
    # from its own request, so its words come after the first sentence's audio.
    assert_words_follow_audio(down, SECS_PER_WORD, tolerance=0.002)
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)


async def test_marks_of_one_word_are_joined_into_the_text_sent(
    server: FakeSpeechifyServer,
) -> None:
    # The fake marks "text-to-speech" as five pieces, across more than one event.
    server.chunk_secs = 0.01
    text = "Our text-to-speech is well-known."
    down, up = await run_test(make_tts(server), [TTSSpeakFrame(text)], params=PHONE)
    assert not errors(up)
    assert spoken(down) == ["Our", "text-to-speech", "is", "well-known."]


async def test_a_rate_speechify_lacks_is_resampled_from_the_nearest_lower_one(
    server: FakeSpeechifyServer,
) -> None:
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("One two.")], params=WIDE)
    assert not errors(up)
    assert server.requests[-1]["output_format"] == "pcm_16000"
    rate_32k = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=32000)
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("One two.")], params=rate_32k)
    assert not errors(up)
    assert server.requests[-1]["output_format"] == "pcm_24000"
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {32000}
    assert abs(audio_secs(down) - 2 * SECS_PER_WORD) < 0.002


async def test_settings_and_runtime_updates_shape_the_body(server: FakeSpeechifyServer) -> None:
    settings = SpeechifyHttpTTSService.Settings(
        voice="kristy",
        model="simba-3.2",
        language="en",
        loudness_normalization=True,
        safety_identifier="user-7f3a",
    )
    delta = SpeechifyHttpTTSService.Settings(
        language="es-MX", text_normalization=False, loudness_normalization=None
    )
    frames = [
        TTSSpeakFrame("First one."),
        TTSUpdateSettingsFrame(delta=delta),
        TTSSpeakFrame("Second one."),
    ]
    down, up = await run_test(make_tts(server, settings=settings), frames, params=PHONE)
    assert not errors(up)
    first, second = server.requests
    assert first == {
        "input": "First one.",
        "voice_id": "kristy",
        "model": "simba-3.2",
        "output_format": "pcm_8000",
        "language": "en-US",
        "safety_identifier": "user-7f3a",
        "options": {"loudness_normalization": True},
    }
    assert second["language"] == "es-MX"
    assert second["options"] == {"text_normalization": False}
    assert spoken(down) == ["First", "one.", "Second", "one."]


async def test_interruption_closes_the_stream(server: FakeSpeechifyServer) -> None:
    server.chunk_delay = 0.03  # under real time: the long sentence is still streaming
    # A 60-word sentence, over 250 characters: sent before its end is seen.
    down = await barge_in(
        make_tts(server), params=PHONE, words=60, pause=0.1, next_reply="New reply."
    )
    await eventually(lambda: server.cancelled_streams)
    assert server.cancelled_streams == 1
    cut = interruption_at(down)
    assert audio_secs(down[:cut]) < 60 * SECS_PER_WORD / 2
    assert abs(audio_secs(down[cut:]) - 2 * SECS_PER_WORD) < 0.002
    # The new reply's words count from its own start, not from the dropped one's audio.
    assert spoken(down[cut:]) == ["New", "reply."]


async def test_a_rejected_key_is_fatal_and_stops_requests(server: FakeSpeechifyServer) -> None:
    tts = SpeechifyHttpTTSService(api_key="wrong", base_url=server.base_url)
    down, up = await run_test(tts, reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "401" in error.error and "SPEECHIFY_API_KEY" in error.error
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
    assert server.refused == 1  # the second sentence was not sent with the same key


async def test_a_refused_request_is_reported_and_the_next_sentence_goes_on(
    server: FakeSpeechifyServer,
) -> None:
    frames = [
        TTSSpeakFrame("Old model."),
        TTSUpdateSettingsFrame(delta=SpeechifyHttpTTSService.Settings(model="simba-3.0")),
        TTSSpeakFrame("New model."),
    ]
    settings = SpeechifyHttpTTSService.Settings(model="simba-english")
    down, up = await run_test(make_tts(server, settings=settings), frames, params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "400" in error.error and "speech marks" in error.error
    assert [b["model"] for b in server.requests] == ["simba-english", "simba-3.0"]
    assert spoken(down) == ["New", "model."]


async def test_an_error_mid_stream_is_reported(server: FakeSpeechifyServer) -> None:
    server.error_after = 2
    frames = [TTSSpeakFrame("One two three four."), TTSSpeakFrame("Five six.")]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "internal_error" in error.error
    # The cut sentence's words never heard are not recorded as spoken.
    assert spoken(down) == ["Five", "six."]


async def test_an_empty_balance_is_fatal_and_stops_requests(server: FakeSpeechifyServer) -> None:
    server.statuses.extend([402])
    down, up = await run_test(make_tts(server), reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "402" in error.error
    assert len(server.requests) == 1  # the second sentence was not sent
    assert spoken(down) == []


async def test_a_busy_server_is_retried_once(server: FakeSpeechifyServer) -> None:
    server.statuses.extend([503])
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("Again.")], params=PHONE)
    assert not errors(up)
    assert len(server.requests) == 2
    assert abs(audio_secs(down) - SECS_PER_WORD) < 0.002


async def test_base_url_and_key_from_the_environment(
    server: FakeSpeechifyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_SPEECHIFY_URL", server.base_url)
    monkeypatch.setenv("SPEECHIFY_API_KEY", "test-key")
    tts = SpeechifyHttpTTSService(aiohttp_session=object())
    _, up = await run_test(tts, [TTSSpeakFrame("Hi.")], params=PHONE)
    assert not errors(up)
    assert len(server.requests) == 1


def test_a_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPEECHIFY_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SPEECHIFY_API_KEY"):
        SpeechifyHttpTTSService()
