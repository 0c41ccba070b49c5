"""SonioxTTSService against the fake's ``/tts-websocket``: one stream per reply, the line's
format, words from character timestamps, barge-in, errors, settings and keep-alives."""

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
from callpipe.services.soniox.tts import SonioxTTSService
from callpipe.services.tts_service import TextAggregationMode
from callpipe.testing import run_test
from callpipe.testing.fakes.soniox import FakeSonioxTTSServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

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
async def server() -> AsyncIterator[FakeSonioxTTSServer]:
    async with FakeSonioxTTSServer(secs_per_word=SECS_PER_WORD, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeSonioxTTSServer, **kwargs: Any) -> SonioxTTSService:
    return SonioxTTSService(api_key="test-key", url=server.url, **kwargs)


async def test_a_reply_is_one_mulaw_stream_and_each_word_follows_its_audio(
    server: FakeSonioxTTSServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    assert server.headers[0]["authorization"] == "Bearer test-key"
    [config] = server.of("config")
    stream_id = config["stream_id"]
    assert config == {
        "stream_id": stream_id,
        "model": "tts-rt-v2",
        "language": "en",
        "voice": "Bryce",
        "audio_format": "pcm_mulaw",
        "sample_rate": 8000,
        "return_timestamps": True,
    }
    assert server.of("text") == [
        {"text": "Hi there. ", "text_end": False, "stream_id": stream_id},
        {"text": "How are you? ", "text_end": False, "stream_id": stream_id},
        {"text": "", "text_end": True, "stream_id": stream_id},
    ]
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    assert abs(audio_secs(down) - 5 * SECS_PER_WORD) < 0.002
    # Words are joined from characters that arrive message by message; the last word is
    # complete only when the stream ends.
    assert spoken(down) == ["Hi", "there.", "How", "are", "you?"]
    assert_words_follow_audio(down, SECS_PER_WORD, tolerance=0.002)
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)


async def test_each_reply_gets_its_own_stream(server: FakeSonioxTTSServer) -> None:
    frames = [TTSSpeakFrame("One."), TTSSpeakFrame("Two.")]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    ids = [c["stream_id"] for c in server.of("config")]
    assert len(set(ids)) == 2
    assert spoken(down) == ["One.", "Two."]


async def test_wide_band_asks_for_pcm_and_an_odd_rate_is_resampled(
    server: FakeSonioxTTSServer,
) -> None:
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("One two.")], params=WIDE)
    assert not errors(up)
    config = server.of("config")[-1]
    assert (config["audio_format"], config["sample_rate"]) == ("pcm_s16le", 16000)
    odd = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=22050)
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("One two.")], params=odd)
    assert not errors(up)
    assert server.of("config")[-1]["sample_rate"] == 16000
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {22050}
    assert abs(audio_secs(down) - 2 * SECS_PER_WORD) < 0.002
    forced = make_tts(server, audio_format="pcm_s16le")
    _, up = await run_test(forced, [TTSSpeakFrame("Linear.")], params=PHONE)
    assert not errors(up)
    assert server.of("config")[-1]["audio_format"] == "pcm_s16le"


def test_formats_the_pipeline_cannot_play_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="audio_format"):
        SonioxTTSService(api_key="k", audio_format="wav")


async def test_settings_and_updates_go_in_the_next_streams_config(
    server: FakeSonioxTTSServer,
) -> None:
    settings = SonioxTTSService.Settings(
        voice="Adrian",
        model="tts-rt-v1",
        language=Language.ES_MX,
        speed=1.2,
        client_reference_id="call-42",
    )
    delta = SonioxTTSService.Settings(voice="Maya", speed=None, reduce_silence=True)
    frames = [
        TTSSpeakFrame("Hola."),
        SleepFrame(0.2),
        TTSUpdateSettingsFrame(delta=delta),
        TTSSpeakFrame("Otra vez."),
    ]
    down, up = await run_test(make_tts(server, settings=settings), frames, params=PHONE)
    assert not errors(up)
    first, second = server.of("config")
    assert {k: first[k] for k in ("model", "language", "voice", "speed")} == {
        "model": "tts-rt-v1",
        "language": "es",
        "voice": "Adrian",
        "speed": 1.2,
    }
    assert first["client_reference_id"] == "call-42"
    assert second["voice"] == "Maya" and second["reduce_silence"] is True
    assert "speed" not in second
    assert len(server.headers) == 1  # no reconnect for a settings change
    assert spoken(down) == ["Hola.", "Otra", "vez."]


async def test_streamed_text_goes_verbatim(server: FakeSonioxTTSServer) -> None:
    tts = make_tts(server, text_aggregation_mode=TextAggregationMode.TOKEN)
    down, up = await run_test(tts, reply("Hel", "lo the", "re."), params=PHONE)
    assert not errors(up)
    assert [m["text"] for m in server.of("text")] == ["Hel", "lo the", "re.", ""]
    assert spoken(down) == ["Hello", "there."]


async def test_chinese_is_timed_per_character(server: FakeSonioxTTSServer) -> None:
    settings = SonioxTTSService.Settings(language="zh")
    down, up = await run_test(
        make_tts(server, settings=settings), [TTSSpeakFrame("你好 世界")], params=PHONE
    )
    assert not errors(up)
    assert spoken(down) == ["你", "好", "世", "界"]


async def test_interruption_cancels_the_stream(server: FakeSonioxTTSServer) -> None:
    server.chunk_delay = 0.03  # under real time: the long sentence is still generating
    down = await barge_in(
        make_tts(server), params=PHONE, words=60, pause=0.1, next_reply="New reply."
    )
    await eventually(lambda: server.cancelled)
    [cancel] = server.of("cancel")
    assert cancel == {"stream_id": server.of("config")[0]["stream_id"], "cancel": True}
    assert server.cancelled == [cancel["stream_id"]]
    cut = interruption_at(down)
    assert audio_secs(down[:cut]) < 60 * SECS_PER_WORD / 2
    assert abs(audio_secs(down[cut:]) - 2 * SECS_PER_WORD) < 0.002
    assert spoken(down[cut:]) == ["New", "reply."]


async def test_a_rejected_key_is_fatal(server: FakeSonioxTTSServer) -> None:
    tts = SonioxTTSService(api_key="wrong", url=server.url)
    down, up = await run_test(tts, reply("First one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "401" in error.error and "SONIOX_API_KEY" in error.error
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)


async def test_a_stream_error_ends_only_its_reply(server: FakeSonioxTTSServer) -> None:
    server.error_next = (500, "Internal error")
    frames = [TTSSpeakFrame("Lost."), TTSSpeakFrame("Found.")]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "500" in error.error and "Internal error" in error.error
    assert spoken(down) == ["Found."]
    assert len(server.headers) == 1  # the socket stayed open


async def test_an_idle_socket_is_kept_alive(
    server: FakeSonioxTTSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("callpipe.services.soniox.tts.KEEPALIVE_SECS", 0.05)
    _, up = await run_test(make_tts(server), [SleepFrame(0.3)], params=PHONE)
    assert not errors(up)
    assert server.of("keep_alive") and server.of("keep_alive")[0] == {"keep_alive": True}


async def test_url_and_key_from_the_environment(
    server: FakeSonioxTTSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_SONIOX_TTS_URL", server.url)  # an origin: the path is added
    monkeypatch.setenv("SONIOX_API_KEY", "test-key")
    _, up = await run_test(SonioxTTSService(), [TTSSpeakFrame("Hi.")], params=PHONE)
    assert not errors(up)
    assert len(server.of("config")) == 1


def test_a_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SONIOX_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SONIOX_API_KEY"):
        SonioxTTSService()
