"""MiniMaxHttpTTSService against FakeMiniMaxServer: the request, the hex audio of the events
(the last one's repeat never played), the whole-answer form, ``base_resp`` failures (a refused
key fatal), interruption, settings and the endpoint forms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    TTSAudioRawFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.minimax.tts import (
    MINIMAX_URL,
    MiniMaxHttpTTSService,
    language_to_minimax_language,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.minimax import FakeMiniMaxServer
from callpipe.transcriptions.language import Language

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
async def server() -> AsyncIterator[FakeMiniMaxServer]:
    async with FakeMiniMaxServer(secs_per_word=SECS_PER_WORD) as fake:
        yield fake


def make_tts(server: FakeMiniMaxServer, **kwargs: Any) -> MiniMaxHttpTTSService:
    kwargs.setdefault("group_id", "g-1")
    return MiniMaxHttpTTSService(api_key="test-key", base_url=server.base_url, **kwargs)


async def test_a_phone_call_asks_for_pcm_at_8k_and_plays_each_sentence(
    server: FakeMiniMaxServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert server.queries == [{"GroupId": "g-1"}] * 2
    assert server.requests[0] == {
        "model": "speech-2.8-turbo",
        "text": "Hi there.",
        "stream": True,
        "voice_setting": {"voice_id": "Calm_Woman", "speed": 1.0, "vol": 1.0, "pitch": 0},
        "audio_setting": {"sample_rate": 8000, "bitrate": 128000, "format": "pcm", "channel": 1},
        "stream_options": {"exclude_aggregated_audio": True},
    }
    assert server.requests[1]["text"] == "How are you?"
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    assert abs(audio_secs(down) - 5 * SECS_PER_WORD) < 1e-6
    assert spoken(down) == ["Hi there.", "How are you?"]
    first_text = next(i for i, f in enumerate(down) if isinstance(f, TTSTextFrame))
    assert abs(audio_secs(down[:first_text]) - 2 * SECS_PER_WORD) < 1e-6
    assert server.completed_streams == 2


async def test_the_last_events_repeat_of_the_audio_is_not_played(
    server: FakeMiniMaxServer,
) -> None:
    server.aggregate_always = True  # a server ignoring exclude_aggregated_audio
    down, up = await run_test(make_tts(server), reply("One two three."), params=PHONE)
    assert not errors(up)
    assert server.events[-1]["data"]["audio"]  # the repeat was sent...
    assert abs(audio_secs(down) - 3 * SECS_PER_WORD) < 1e-6  # ...and not played


async def test_settings_go_in_the_body_and_the_language_becomes_language_boost(
    server: FakeMiniMaxServer,
) -> None:
    settings = MiniMaxHttpTTSService.Settings(
        model="speech-2.6-hd",
        voice="English_Graceful_Lady",
        language=Language.PT_BR,
        speed=1.2,
        volume=2.0,
        pitch=-3,
        emotion="calm",
        text_normalization=True,
    )
    down, up = await run_test(make_tts(server, settings=settings), reply("Olá."), params=WIDE)
    assert not errors(up)
    body = server.requests[0]
    assert body["model"] == "speech-2.6-hd"
    assert body["voice_setting"] == {
        "voice_id": "English_Graceful_Lady",
        "speed": 1.2,
        "vol": 2.0,
        "pitch": -3,
        "emotion": "calm",
        "text_normalization": True,
    }
    assert body["language_boost"] == "Portuguese"
    assert body["audio_setting"]["sample_rate"] == 16000
    assert abs(audio_secs(down) - SECS_PER_WORD) < 1e-6


async def test_a_rate_minimax_lacks_is_asked_lower_and_resampled(
    server: FakeMiniMaxServer,
) -> None:
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=48000)
    down, up = await run_test(make_tts(server), reply("One two three."), params=params)
    assert not errors(up)
    assert server.requests[0]["audio_setting"]["sample_rate"] == 44100
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {48000}
    assert abs(audio_secs(down) - 3 * SECS_PER_WORD) < 0.01


async def test_without_streaming_the_whole_answer_is_played(server: FakeMiniMaxServer) -> None:
    down, up = await run_test(make_tts(server, stream=False), reply("One two."), params=PHONE)
    assert not errors(up)
    assert server.requests[0]["stream"] is False
    assert "stream_options" not in server.requests[0]
    assert abs(audio_secs(down) - 2 * SECS_PER_WORD) < 1e-6
    assert spoken(down) == ["One two."]


async def test_a_refused_key_is_fatal_and_stops_requests(server: FakeMiniMaxServer) -> None:
    tts = MiniMaxHttpTTSService(api_key="wrong", base_url=server.base_url)
    down, up = await run_test(tts, reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "1004" in error.error and "MINIMAX_API_KEY" in error.error
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
    assert len(server.headers) == 1  # the second sentence was not sent with the same key
    assert spoken(down) == []


async def test_a_rate_limit_is_retried_once(server: FakeMiniMaxServer) -> None:
    server.base_codes.append(1039)
    down, up = await run_test(make_tts(server), reply("First one."), params=PHONE)
    assert not errors(up)
    assert [b["text"] for b in server.requests] == ["First one."] * 2
    assert abs(audio_secs(down) - 2 * SECS_PER_WORD) < 1e-6


async def test_a_rate_limit_twice_is_reported_and_the_next_sentence_goes_on(
    server: FakeMiniMaxServer,
) -> None:
    server.base_codes.extend([1002, 1002])
    down, up = await run_test(make_tts(server), reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "1002" in error.error and "rate limit" in error.error
    assert [b["text"] for b in server.requests] == ["First one.", "First one.", "Second one."]
    assert abs(audio_secs(down) - 2 * SECS_PER_WORD) < 1e-6  # the second sentence's
    assert spoken(down) == ["Second one."]


async def test_a_failure_event_mid_answer_ends_the_sentence(server: FakeMiniMaxServer) -> None:
    server.error_after = 1
    down, up = await run_test(make_tts(server), reply("One two three.", " Four."), params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "1000" in error.error
    assert abs(audio_secs(down) - 2 * SECS_PER_WORD) < 1e-6  # "One" and "Four."
    assert spoken(down) == ["Four."]  # the cut sentence's text is not recorded as spoken


async def test_an_interruption_closes_the_answer_in_flight(server: FakeMiniMaxServer) -> None:
    server.chunk_delay = 0.03
    down = await barge_in(
        make_tts(server), params=PHONE, words=60, pause=0.1, next_reply="New reply."
    )
    await eventually(lambda: server.cancelled_streams)
    assert server.cancelled_streams == 1
    cut = interruption_at(down)
    assert audio_secs(down[:cut]) < 60 * SECS_PER_WORD / 2
    assert abs(audio_secs(down[cut:]) - 2 * SECS_PER_WORD) < 1e-6


async def test_a_settings_update_applies_to_the_next_sentence(server: FakeMiniMaxServer) -> None:
    update = MiniMaxHttpTTSService.Settings(voice="v-2", language_boost="auto", volume=3.0)
    frames = [*reply("One."), TTSUpdateSettingsFrame(delta=update), *reply("Two.")]
    _, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    first, second = server.requests
    assert first["voice_setting"]["voice_id"] == "Calm_Woman" and "language_boost" not in first
    assert second["voice_setting"]["voice_id"] == "v-2" and second["voice_setting"]["vol"] == 3.0
    assert second["language_boost"] == "auto"


async def test_the_dict_form_takes_minimax_voice_setting(server: FakeMiniMaxServer) -> None:
    frame = TTSUpdateSettingsFrame(settings={"voice_setting": {"voice_id": "v-3", "vol": 4}})
    _, up = await run_test(make_tts(server), [frame, *reply("One.")], params=PHONE)
    assert not errors(up)
    assert server.requests[0]["voice_setting"]["voice_id"] == "v-3"
    assert server.requests[0]["voice_setting"]["vol"] == 4


def test_older_arguments_and_settings_precedence() -> None:
    older = MiniMaxHttpTTSService.InputParams(language="es", speed=0.8, emotion="happy")
    tts = MiniMaxHttpTTSService(api_key="k", model="speech-02-hd", voice_id="v", params=older)
    s = tts.settings
    assert (s.model, s.voice, s.language_boost, s.speed, s.emotion) == (
        "speech-02-hd",
        "v",
        "Spanish",
        0.8,
        "happy",
    )
    both = MiniMaxHttpTTSService(
        api_key="k", params=older, settings=MiniMaxHttpTTSService.Settings(speed=1.5)
    )
    assert both.settings.speed == 1.5 and both.settings.language_boost is None


def test_endpoint_forms_and_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLPIPE_MINIMAX_URL", raising=False)
    assert MiniMaxHttpTTSService(api_key="k").endpoint == MINIMAX_URL
    china = MiniMaxHttpTTSService(api_key="k", base_url="https://api.minimaxi.chat/v1/t2a_v2")
    assert china.endpoint == "https://api.minimaxi.chat/v1/t2a_v2"
    monkeypatch.setenv("CALLPIPE_MINIMAX_URL", "http://127.0.0.1:9")
    assert MiniMaxHttpTTSService(api_key="k").endpoint == "http://127.0.0.1:9/v1/t2a_v2"
    monkeypatch.delenv("MINIMAX_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="MINIMAX_API_KEY"):
        MiniMaxHttpTTSService()


def test_language_names() -> None:
    assert language_to_minimax_language(Language.PT_BR) == "Portuguese"
    assert language_to_minimax_language(Language.YUE) == "Chinese,Yue"
    assert language_to_minimax_language("zh-TW") == "Chinese"
