"""SpeechmaticsTTSService against the fake's ``POST /generate/<voice>``: the request, 16 kHz PCM
resampled to the line's rate, barge-in, errors, settings and Pipecat's older arguments."""

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
from callpipe.services.speechmatics.tts import SpeechmaticsTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.speechmatics import FakeSpeechmaticsTTSServer

from .helpers import (
    PHONE,
    WIDE,
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
async def server() -> AsyncIterator[FakeSpeechmaticsTTSServer]:
    async with FakeSpeechmaticsTTSServer(secs_per_word=SECS_PER_WORD, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeSpeechmaticsTTSServer, **kwargs: Any) -> SpeechmaticsTTSService:
    return SpeechmaticsTTSService(api_key="test-key", base_url=server.base_url, **kwargs)


async def test_phone_call_gets_16khz_pcm_resampled_to_8khz(
    server: FakeSpeechmaticsTTSServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    assert server.requests == [{"text": "Hi there."}, {"text": "How are you?"}]
    assert server.voices == ["sarah", "sarah"]
    assert server.queries[0] == {"output_format": "pcm_16000", "sm-app": "callpipe"}
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    assert abs(audio_secs(down) - 5 * SECS_PER_WORD) < 0.01
    assert spoken(down) == ["Hi there.", "How are you?"]
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)


async def test_at_16khz_the_audio_passes_as_it_came(server: FakeSpeechmaticsTTSServer) -> None:
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("One two.")], params=WIDE)
    assert not errors(up)
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {16000}
    assert abs(audio_secs(down) - 2 * SECS_PER_WORD) < 0.002


async def test_voice_from_settings_older_arguments_and_updates(
    server: FakeSpeechmaticsTTSServer,
) -> None:
    tts = make_tts(
        server,
        voice_id="jack",
        params=SpeechmaticsTTSService.InputParams(max_retries=2),
        settings=SpeechmaticsTTSService.Settings(voice="theo"),
        aiohttp_session=object(),
    )
    assert tts._settings.max_retries == 5  # params are ignored when settings are given
    frames = [
        TTSSpeakFrame("First one."),
        TTSUpdateSettingsFrame(delta=SpeechmaticsTTSService.Settings(voice="megan")),
        TTSSpeakFrame("Second one."),
    ]
    down, up = await run_test(tts, frames, params=PHONE)
    assert not errors(up)
    assert server.voices == ["theo", "megan"]
    older = make_tts(server, voice_id="jack", params=SpeechmaticsTTSService.InputParams())
    assert older._settings.voice == "jack" and older._settings.max_retries == 5


async def test_interruption_closes_the_stream(server: FakeSpeechmaticsTTSServer) -> None:
    server.chunk_delay = 0.03  # under real time: the long sentence is still streaming
    down = await barge_in(
        make_tts(server), params=PHONE, words=60, pause=0.1, next_reply="New reply."
    )
    await eventually(lambda: server.cancelled_streams)
    assert server.cancelled_streams == 1
    cut = interruption_at(down)
    assert audio_secs(down[:cut]) < 60 * SECS_PER_WORD / 2
    assert abs(audio_secs(down[cut:]) - 2 * SECS_PER_WORD) < 0.01


async def test_a_rejected_key_is_fatal_and_stops_requests(
    server: FakeSpeechmaticsTTSServer,
) -> None:
    tts = SpeechmaticsTTSService(api_key="wrong", base_url=server.base_url)
    down, up = await run_test(tts, reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "401" in error.error and "SPEECHMATICS_API_KEY" in error.error
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
    assert server.refused == 1


async def test_an_unknown_voice_is_reported_and_the_call_goes_on(
    server: FakeSpeechmaticsTTSServer,
) -> None:
    frames = [
        TTSSpeakFrame("Nobody."),
        TTSUpdateSettingsFrame(delta=SpeechmaticsTTSService.Settings(voice="sarah")),
        TTSSpeakFrame("Sarah."),
    ]
    settings = SpeechmaticsTTSService.Settings(voice="nobody")
    down, up = await run_test(make_tts(server, settings=settings), frames, params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "400" in error.error and "unknown voice" in error.error
    assert spoken(down) == ["Sarah."]


async def test_a_busy_server_is_retried_once(server: FakeSpeechmaticsTTSServer) -> None:
    server.statuses.extend([503, 503, 503])
    frames = [TTSSpeakFrame("Lost."), TTSSpeakFrame("Again.")]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "503" in error.error
    # Two tries for the first sentence, then the second needs its own retry.
    assert len(server.requests) == 4
    assert spoken(down) == ["Again."]


async def test_base_url_and_key_from_the_environment(
    server: FakeSpeechmaticsTTSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_SPEECHMATICS_TTS_URL", server.base_url)
    monkeypatch.setenv("SPEECHMATICS_API_KEY", "test-key")
    _, up = await run_test(SpeechmaticsTTSService(), [TTSSpeakFrame("Hi.")], params=PHONE)
    assert not errors(up)
    assert len(server.requests) == 1


def test_a_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPEECHMATICS_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SPEECHMATICS_API_KEY"):
        SpeechmaticsTTSService()
