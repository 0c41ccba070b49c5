"""TogetherTTSService against FakeTogetherServer: a commit per sentence, replies ended by
their items' ``done``, a new socket at a barge-in, settings, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import (
    ErrorFrame,
    FatalErrorFrame,
    Frame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.together.tts import TogetherTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.together import FakeTogetherServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import (
    PHONE,
    after_barge_in,
    assert_one_text_after_audio,
    assert_reply_framed,
    audio_secs,
    emitted,
    of,
    reply,
    run_then,
)

WORD = 0.05  # seconds of audio per word in the fake
Settings = TogetherTTSService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeTogetherServer]:
    async with FakeTogetherServer(secs_per_word=WORD, chunk_secs=0.02) as fake:
        yield fake


def make_tts(server: FakeTogetherServer, **kwargs: Any) -> TogetherTTSService:
    url = server.base_url + "/audio/speech/websocket"
    return TogetherTTSService(api_key="test-key", url=url, **kwargs)


def sent_types(server: FakeTogetherServer) -> list[str]:
    return [m["type"] for m in server.tts_messages]


async def test_each_sentence_is_committed_and_the_reply_ends_after_its_audio(
    server: FakeTogetherServer,
) -> None:
    down, up = await run_test(
        make_tts(server), reply("Hi there.", " How are", " you?"), params=PHONE
    )
    assert not of(up, ErrorFrame)
    assert server.tts_queries == [
        {
            "model": ["hexgrad/Kokoro-82M"],
            "voice": ["af_heart"],
            "response_format": ["pcm"],
            "language": ["en"],
        }
    ]
    assert server.auth_used == ["header:Authorization"]
    assert sent_types(server) == ["input_text_buffer.append", "input_text_buffer.commit"] * 2
    assert [m["text"] for m in server.tts_messages if "text" in m] == ["Hi there.", "How are you?"]
    assert server.items == [("af_heart", "Hi there."), ("af_heart", "How are you?")]

    assert_reply_framed(down)
    # 24 kHz from Together, resampled to the call's 8 kHz; every item's audio is there.
    assert {f.sample_rate for f in of(down, TTSAudioRawFrame)} == {8000}
    assert abs(audio_secs(down) - 5 * WORD) < 0.01
    # No word timing: the reply's text follows all of its audio.
    assert_one_text_after_audio(down, "Hi there. How are you?")


async def test_a_blended_voice_and_the_options_reach_the_query(
    server: FakeTogetherServer,
) -> None:
    settings = Settings(
        voice="af_bella(2)+af_heart(1)",
        language="fr-FR",
        max_partial_length=80,
        extra_params={"pronunciation_dict": ["Pipecat/pipe cat"]},
    )
    tts = make_tts(server, settings=settings)
    down, up = await run_test(tts, reply("Bonjour."), params=PHONE)
    assert not of(up, ErrorFrame)
    [query] = server.tts_queries
    assert query["voice"] == ["af_bella(2)+af_heart(1)"]  # the + survived the encoding
    assert "%2B" in server.paths[0]
    assert query["language"] == ["fr"] and query["max_partial_length"] == ["80"]
    first = server.tts_messages[0]
    assert first == {
        "type": "tts_session.updated",
        "session": {
            "voice": "af_bella(2)+af_heart(1)",
            "extra_params": {"pronunciation_dict": ["Pipecat/pipe cat"]},
        },
    }


async def test_a_barge_in_replaces_the_socket_and_drops_the_old_audio(
    server: FakeTogetherServer,
) -> None:
    server.chunk_delay = 0.01  # the long sentence is still being generated at the barge-in
    long_reply = reply(" ".join(["word"] * 30) + ".")
    after: list[Frame] = [InterruptionFrame(), *reply("Fresh start.")]
    down = await run_then(
        make_tts(server), long_reply, after, when=emitted(TTSAudioRawFrame), params=PHONE
    )
    rest = after_barge_in(down)
    assert len(server.tts_queries) == 2  # a new socket for the next reply
    # Exactly the new reply's audio, then its end and its text.
    assert abs(audio_secs(rest) - 2 * WORD) < 0.01
    assert [f.text for f in of(rest, TTSTextFrame)] == ["Fresh start."]
    assert len(of(rest, TTSStoppedFrame)) == 1
    assert server.items[-1] == ("af_heart", "Fresh start.")


async def test_a_new_voice_reconnects_before_the_next_reply(server: FakeTogetherServer) -> None:
    frames = [
        *reply("One."),
        SleepFrame(0.2),
        TTSUpdateSettingsFrame(delta=Settings(voice="af_bella")),
        *reply("Two."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [q["voice"] for q in server.tts_queries] == [["af_heart"], ["af_bella"]]
    assert server.items == [("af_heart", "One."), ("af_bella", "Two.")]
    assert [f.text for f in of(down, TTSTextFrame)] == ["One.", "Two."]


async def test_a_failed_item_is_reported_and_the_reply_still_ends(
    server: FakeTogetherServer,
) -> None:
    server.fail_next = "voice unavailable"
    down, up = await run_test(make_tts(server), reply("Hello.", " Bye."), params=PHONE)
    [error] = of(up, ErrorFrame)
    assert not isinstance(error, FatalErrorFrame) and "voice unavailable" in error.error
    assert of(down, TTSStoppedFrame)
    assert abs(audio_secs(down) - WORD) < 0.01  # "Bye." was spoken
    assert not of(down, TTSTextFrame)  # what was heard of the reply is unknown


@pytest.mark.parametrize(("code", "fatal"), [("server_error", False), ("invalid_api_key", True)])
async def test_an_error_event_is_fatal_only_for_a_rejected_key(
    server: FakeTogetherServer, code: str, fatal: bool
) -> None:
    server.error_next, server.error_code = "said the provider", code
    down, up = await run_test(make_tts(server), reply("Hello."), params=PHONE)
    errors = of(up, ErrorFrame)
    assert errors and all(isinstance(e, FatalErrorFrame) is fatal for e in errors)
    assert "said the provider" in errors[0].error


async def test_a_rejected_key_at_the_handshake_is_fatal(server: FakeTogetherServer) -> None:
    url = server.base_url + "/audio/speech/websocket"
    tts = TogetherTTSService(api_key="wrong", url=url)
    down, up = await run_test(tts, [SleepFrame(0.2)], params=PHONE)
    fatal = of(up, FatalErrorFrame)
    assert fatal and "TOGETHER_API_KEY" in fatal[0].error


async def test_the_fakes_environment_reaches_the_socket(
    server: FakeTogetherServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_TOGETHER_URL", server.base_url)
    monkeypatch.setenv("TOGETHER_API_KEY", "test-key")
    down, up = await run_test(TogetherTTSService(), reply("Hi."), params=PHONE)
    assert not of(up, ErrorFrame)
    assert server.items == [("af_heart", "Hi.")]
