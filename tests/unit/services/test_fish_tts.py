"""FishAudioTTSService against FakeFishServer: the handshake and start request, one session per
reply ended by stop/finish, a reply's text after its audio, interruption, errors and settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    LLMFullResponseEndFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.fish.tts import FishAudioTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.fish import FakeFishServer

from .helpers import PHONE as PARAMS
from .helpers import (
    after_barge_in,
    assert_reply_framed,
    audio_secs,
    barge_in,
    errors,
    reply,
    until,
)

Settings = FishAudioTTSService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeFishServer]:
    async with FakeFishServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeFishServer, **kwargs: Any) -> FishAudioTTSService:
    return FishAudioTTSService(api_key="test-key", url=server.url, **kwargs)


def events(session: list[dict[str, Any]]) -> list[str]:
    """A session's client events, a text as its text, others as their name."""
    return [str(e["text"]) if e["event"] == "text" else str(e["event"]) for e in session]


async def test_a_phone_call_asks_for_pcm_at_8k_and_a_reply_ends_with_stop(
    server: FakeFishServer,
) -> None:
    settings = Settings(voice="voice-1", temperature=0.5)
    down, up = await run_test(
        make_tts(server, settings=settings), reply("Hi there.", " How are", " you?"), params=PARAMS
    )
    assert not errors(up)
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert server.headers[0]["model"] == "s2.1-pro"
    assert server.starts[0] == {
        "event": "start",
        "request": {
            "text": "",
            "format": "pcm",
            "sample_rate": 8000,
            "reference_id": "voice-1",
            "latency": "balanced",
            "normalize": True,
            "prosody": {"speed": 1.0, "volume": 0},
            "temperature": 0.5,
        },
    }
    used = [s for s in server.messages if len(s) > 1]
    assert [events(s) for s in used] == [
        ["start", "Hi there. ", "flush", "How are you? ", "flush", "stop"]
    ]
    assert_reply_framed(down)
    assert audio_secs(down) == pytest.approx(5 * 0.1)
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    # Fish gives no timing: the reply's text follows all of its audio.
    [text] = [i for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert down[text].text == "Hi there. How are you?"
    assert audio_secs(down[:text]) == pytest.approx(0.5)


async def test_an_output_rate_fish_lacks_gets_24k_resampled(server: FakeFishServer) -> None:
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=48000)
    down, up = await run_test(make_tts(server), reply("One two."), params=params)
    assert not errors(up)
    assert server.starts[0]["request"]["sample_rate"] == 24000
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {48000}
    assert audio_secs(down) == pytest.approx(0.2, abs=0.01)


async def test_each_reply_has_its_own_session_opened_ahead(server: FakeFishServer) -> None:
    server.chunk_delay = 0.005
    frames = [*reply("One two three four."), *reply("Five six.")]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    used = [events(s) for s in server.messages if len(s) > 1]
    assert used == [
        ["start", "One two three four. ", "flush", "stop"],
        ["start", "Five six. ", "flush", "stop"],
    ]
    ids = [f.context_id for f in down if isinstance(f, TTSStartedFrame)]
    per_reply = [
        audio_secs([f for f in down if isinstance(f, TTSAudioRawFrame) and f.context_id == i])
        for i in ids
    ]
    assert per_reply == [pytest.approx(0.4), pytest.approx(0.2)]


async def test_token_mode_streams_text_and_stop_speaks_the_rest(server: FakeFishServer) -> None:
    tts = make_tts(server, text_aggregation_mode="token")
    down, up = await run_test(tts, reply("Hello", " there", " friend"), params=PARAMS)
    assert not errors(up)
    [used] = [events(s) for s in server.messages if len(s) > 1]
    assert used == ["start", "Hello", " there", " friend", "stop"]
    assert server.runs == ["Hello there friend"]
    assert audio_secs(down) == pytest.approx(0.3)


async def test_an_interrupted_reply_closes_its_session_and_drops_its_audio(
    server: FakeFishServer,
) -> None:
    server.chunk_delay = 0.02
    down = await barge_in(make_tts(server), params=PARAMS, tail=" More")
    rest = after_barge_in(down)
    assert [f.text for f in rest if isinstance(f, TTSTextFrame)] == ["Fresh start."]
    assert audio_secs(rest) == pytest.approx(0.2)
    # The socket was closed: the fake stopped generating the old reply's 4.1 s.
    sent = sum(len(e["audio"]) for e in server.sent if e["event"] == "audio") / (2 * 8000)
    assert sent < 3.0


async def test_a_finish_error_is_reported_and_the_reply_closes(server: FakeFishServer) -> None:
    frames = [
        until(lambda: bool(server.starts) and _arm(server)),
        *reply("Lost words."),
        *reply("Next one."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    # The failed reply's text is not recorded as spoken; the next reply's is.
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Next one."]
    [error] = errors(up)
    assert "Fish Audio ended the session with an error" in error.error and not error.fatal
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    assert server.runs == ["Next one. "]
    assert {"event": "log", "message": "scripted error"} in server.sent


def _arm(server: FakeFishServer) -> bool:
    server.error_next = True
    return True


async def test_a_rejected_key_is_fatal(server: FakeFishServer) -> None:
    tts = FishAudioTTSService(api_key="wrong", url=server.url)
    _, up = await run_test(tts, reply("Hello."), params=PARAMS)
    fatal = [e for e in errors(up) if e.fatal]
    assert fatal and "FISH_API_KEY" in fatal[0].error


async def test_a_settings_update_applies_from_the_next_reply(server: FakeFishServer) -> None:
    update = TTSUpdateSettingsFrame(delta=Settings(voice="voice-2", prosody_speed=1.5))
    frames = [*reply("One."), update, *reply("Two.")]
    _, up = await run_test(make_tts(server, reference_id="voice-1"), frames, params=PARAMS)
    assert not errors(up)
    used = [s[0]["request"] for s in server.messages if len(s) > 1]
    assert [(r["reference_id"], r["prosody"]["speed"]) for r in used] == [
        ("voice-1", 1.0),
        ("voice-2", 1.5),
    ]


def test_older_forms_and_the_nested_prosody_mapping() -> None:
    params = FishAudioTTSService.InputParams(latency="normal", prosody_volume=3)
    tts = FishAudioTTSService(api_key="k", reference_id="v", model_id="s1", params=params)
    assert tts.settings.voice == "v" and tts.settings.model == "s1"
    assert tts.headers()["model"] == "s1"
    assert tts.start_request()["latency"] == "normal"
    assert tts.start_request()["prosody"] == {"speed": 1.0, "volume": 3}
    # settings= wins over params (which it then ignores), as in Pipecat.
    tts = FishAudioTTSService(api_key="k", params=params, settings=Settings(top_p=0.3))
    assert tts.start_request()["latency"] == "balanced" and tts.start_request()["top_p"] == 0.3
    delta = Settings.from_mapping({"prosody": {"speed": 0.8}, "voice_id": "x"})
    assert delta.prosody_speed == 0.8 and delta.voice == "x"
    with pytest.raises(ConfigurationError):
        FishAudioTTSService(api_key="k", output_format="mp3")


async def test_a_dropped_session_opened_ahead_is_started_again(server: FakeFishServer) -> None:
    dropped: list[int] = []

    def drop() -> bool:
        dropped.append(server.drop_idle())
        return True

    frames = [
        *reply("One."),
        until(lambda: len(server.messages) >= 2 and all(server.messages)),
        until(drop),
        until(lambda: len(server.starts) >= 3),  # reconnected, start sent again
        *reply("Two words."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert dropped == [1]
    assert not errors(up)
    used = [events(s) for s in server.messages if len(s) > 1]
    assert used == [["start", "One. ", "flush", "stop"], ["start", "Two words. ", "flush", "stop"]]
    # The second reply went on the reconnected session (the third handshake), not a new one.
    assert events(server.messages[1]) == ["start"]
    assert events(server.messages[2])[:2] == ["start", "Two words. "]
    assert audio_secs(down) == pytest.approx(0.3)
