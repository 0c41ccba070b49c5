"""HumeTTSService against the fake's ``/v0/tts/stream/json``: one request per sentence, 48 kHz
audio resampled to the line, word timing, acting directions, barge-in, errors and settings."""

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
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.hume.tts import HumeTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.hume import FakeHumeServer

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
async def server() -> AsyncIterator[FakeHumeServer]:
    async with FakeHumeServer(secs_per_word=SECS_PER_WORD, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeHumeServer, **kwargs: Any) -> HumeTTSService:
    kwargs.setdefault("voice_id", "voice-1")
    return HumeTTSService(api_key="test-key", base_url=server.base_url, **kwargs)


async def test_phone_call_gets_8khz_audio_and_each_word_after_its_audio(
    server: FakeHumeServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    assert server.requests == [
        {
            "utterances": [{"text": text, "voice": {"id": "voice-1"}}],
            "format": {"type": "pcm"},
            "instant_mode": True,
            "version": "2",
            "include_timestamp_types": ["word"],
        }
        for text in ("Hi there.", "How are you?")
    ]
    assert server.headers[0]["x-hume-api-key"] == "test-key"
    # Hume's 48 kHz PCM leaves at the line's rate, all of it.
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    assert abs(audio_secs(down) - 5 * SECS_PER_WORD) < 0.002
    assert spoken(down) == ["Hi", "there.", "How", "are", "you?"]
    # Each word leaves once the audio up to its end went out; the second sentence's timing
    # counts from its own request, so its words come after the first sentence's audio.
    assert_words_follow_audio(down, SECS_PER_WORD, tolerance=0.002)
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)


async def test_the_rate_asked_for_is_kept(server: FakeHumeServer) -> None:
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("One two.")], params=WIDE)
    assert not errors(up)
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {16000}
    # Pipecat's own default, 48 kHz: Hume's audio as it came, not resampled.
    down, up = await run_test(
        make_tts(server, sample_rate=48000), [TTSSpeakFrame("One two.")], params=PHONE
    )
    assert not errors(up)
    audio = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {48000}
    assert len(audio) == int(2 * SECS_PER_WORD * 48000) * 2


async def test_acting_directions_use_octave_1_and_text_follows_each_sentence(
    server: FakeHumeServer,
) -> None:
    params = HumeTTSService.InputParams(description="warm", speed=1.2, trailing_silence=0.5)
    down, up = await run_test(
        make_tts(server, params=params), reply("Hello you.", " Bye now."), params=PHONE
    )
    assert not errors(up)
    assert server.requests[0] == {
        "utterances": [
            {
                "text": "Hello you.",
                "voice": {"id": "voice-1"},
                "description": "warm",
                "speed": 1.2,
                "trailing_silence": 0.5,
            }
        ],
        "format": {"type": "pcm"},
        "instant_mode": True,
        "version": "1",
    }
    # No word timing for Octave 1: each sentence's text follows its audio (all but the few ms
    # the resampler holds until the reply ends), trailing silence included.
    assert spoken(down) == ["Hello you.", "Bye now."]
    cut = next(i for i, f in enumerate(down) if isinstance(f, TTSTextFrame))
    assert audio_secs(down[:cut]) > 2 * SECS_PER_WORD + 0.5 - 0.04
    assert abs(audio_secs(down) - 2 * (2 * SECS_PER_WORD + 0.5)) < 0.002


async def test_settings_win_over_params(server: FakeHumeServer) -> None:
    tts = make_tts(
        server,
        voice_id=None,
        params=HumeTTSService.InputParams(description="sad"),
        settings=HumeTTSService.Settings(voice="voice-9", speed=0.9, temperature=0.5),
        voice_provider="HUME_AI",
    )
    _, up = await run_test(tts, [TTSSpeakFrame("Hey.")], params=PHONE)
    assert not errors(up)
    [body] = server.requests
    assert body["utterances"] == [
        {"text": "Hey.", "voice": {"id": "voice-9", "provider": "HUME_AI"}, "speed": 0.9}
    ]
    assert body["version"] == "2" and body["temperature"] == 0.5


async def test_runtime_settings_apply_from_the_next_sentence(server: FakeHumeServer) -> None:
    directed = HumeTTSService.Settings(voice="voice-2", description="calm", speed=0.8)
    frames = [
        TTSSpeakFrame("First one."),
        TTSUpdateSettingsFrame(delta=directed),
        TTSSpeakFrame("Second one."),
        TTSUpdateSettingsFrame(delta=HumeTTSService.Settings(description=None)),
        TTSSpeakFrame("Third one."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    first, second, third = server.requests
    assert first["version"] == "2" and first["utterances"][0]["voice"] == {"id": "voice-1"}
    assert second["version"] == "1" and "include_timestamp_types" not in second
    assert second["utterances"][0] == {
        "text": "Second one.",
        "voice": {"id": "voice-2"},
        "description": "calm",
        "speed": 0.8,
    }
    assert third["version"] == "2" and third["include_timestamp_types"] == ["word"]
    # Words while Octave 2 times them, the whole sentence while it does not.
    assert spoken(down) == ["First", "one.", "Second one.", "Third", "one."]


async def test_interruption_closes_the_stream(server: FakeHumeServer) -> None:
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


async def test_a_rejected_key_is_fatal_and_stops_requests(server: FakeHumeServer) -> None:
    tts = HumeTTSService(api_key="wrong", voice_id="v", base_url=server.base_url)
    down, up = await run_test(tts, reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "401" in error.error and "HUME_API_KEY" in error.error
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
    assert server.refused == 1  # the second sentence was not sent with the same key


async def test_a_refused_request_is_reported_and_the_next_sentence_goes_on(
    server: FakeHumeServer,
) -> None:
    settings = HumeTTSService.Settings(speed=9.0)  # outside Hume's 0.25 to 3
    frames = [
        TTSSpeakFrame("Too fast."),
        TTSUpdateSettingsFrame(delta=HumeTTSService.Settings(speed=1.0)),
        TTSSpeakFrame("Just right."),
    ]
    down, up = await run_test(make_tts(server, settings=settings), frames, params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "422" in error.error and "speed" in error.error
    assert [b["utterances"][0]["speed"] for b in server.requests] == [9.0, 1.0]
    assert spoken(down)[-2:] == ["Just", "right."]
    assert abs(audio_secs(down) - 2 * SECS_PER_WORD) < 0.002


async def test_a_busy_server_is_retried_once(server: FakeHumeServer) -> None:
    server.statuses.extend([503])
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("Again.")], params=PHONE)
    assert not errors(up)
    assert len(server.requests) == 2
    assert abs(audio_secs(down) - SECS_PER_WORD) < 0.002


async def test_base_url_from_the_environment(
    server: FakeHumeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_HUME_URL", server.base_url)
    monkeypatch.setenv("HUME_API_KEY", "test-key")
    tts = HumeTTSService(settings=HumeTTSService.Settings(voice="v"))
    _, up = await run_test(tts, [TTSSpeakFrame("Hi.")], params=PipelineParams())
    assert not errors(up)
    assert len(server.requests) == 1


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUME_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="HUME_API_KEY"):
        HumeTTSService(voice_id="v")
    with pytest.raises(ConfigurationError, match="no voice"):
        HumeTTSService(api_key="k")
    with pytest.raises(ConfigurationError, match="voice_provider"):
        HumeTTSService(api_key="k", voice_id="v", voice_provider="ELSEWHERE")
