"""AsyncAITTSService and AsyncAIHttpTTSService against the Async fakes: the session's init
message, one forced transcript per sentence, a reply's context closed once quiet and ended by
``final``, a barge-in's ``close_context``, settings, errors and the HTTP body."""

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
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.asyncai.tts import AsyncAIHttpTTSService, AsyncAITTSService
from callpipe.services.tts_service import TextAggregationMode
from callpipe.testing import run_test
from callpipe.testing.fakes.asyncai import FakeAsyncAIHTTPServer, FakeAsyncAIServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import (
    PHONE,
    WIDE,
    after_barge_in,
    assert_one_text_after_audio,
    assert_reply_framed,
    audio_secs,
    emitted,
    of,
    reply,
    run_then,
)

WORD = 0.05  # seconds of audio per word in the fakes
VOICE = "e0f39dc4-f691-4e78-bba5-5c636692cc04"
Settings = AsyncAITTSService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeAsyncAIServer]:
    async with FakeAsyncAIServer(secs_per_word=WORD, chunk_secs=0.02) as fake:
        yield fake


@pytest.fixture
async def http_server() -> AsyncIterator[FakeAsyncAIHTTPServer]:
    async with FakeAsyncAIHTTPServer(secs_per_word=WORD, chunk_secs=0.02) as fake:
        yield fake


def make_tts(server: FakeAsyncAIServer, **kwargs: Any) -> AsyncAITTSService:
    kwargs.setdefault("settings", Settings(voice=VOICE))
    tts = AsyncAITTSService(
        api_key="test-key", url=server.url + "/text_to_speech/websocket/ws", **kwargs
    )
    tts.quiet_secs = 0.1
    return tts


async def test_each_sentence_is_forced_and_the_reply_ends_with_final(
    server: FakeAsyncAIServer,
) -> None:
    down, up = await run_test(
        make_tts(server), reply("Hi there.", " How are", " you?"), params=PHONE
    )
    assert not of(up, ErrorFrame)
    assert server.queries == [{"api_key": "test-key", "version": "v1"}]
    assert server.inits == [
        {
            "model_id": "async_flash_v1.5",
            "voice": {"mode": "id", "id": VOICE},
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 8000},
            "language": None,
        }
    ]
    [started] = of(down, TTSStartedFrame)
    context = started.context_id
    texts = [m for m in server.messages if m.get("transcript", "").strip()]
    assert texts == [
        {"transcript": "Hi there.", "context_id": context, "force": True},
        {"transcript": "How are you?", "context_id": context, "force": True},
    ]
    # Once quiet, the reply's context is closed; Async's final ends the reply.
    assert server.messages[-1] == {"context_id": context, "close_context": True, "transcript": ""}
    assert {"final": True, "context_id": context} in server.sent
    assert_reply_framed(down)
    assert {f.sample_rate for f in of(down, TTSAudioRawFrame)} == {8000}
    assert abs(audio_secs(down) - 5 * WORD) < 0.01
    assert_one_text_after_audio(down, "Hi there. How are you?")


async def test_streamed_text_goes_unforced_and_the_end_forces_it(
    server: FakeAsyncAIServer,
) -> None:
    tts = make_tts(server, text_aggregation_mode=TextAggregationMode.TOKEN)
    down, up = await run_test(tts, reply("Hello", " there", " friend"), params=WIDE)
    assert not of(up, ErrorFrame)
    assert server.inits[0]["output_format"]["sample_rate"] == 16000
    sent = [(m["transcript"], m["force"]) for m in server.messages if "force" in m]
    assert sent[-1] == (" ", True)
    assert all(force is False for _, force in sent[:-1])
    assert "".join(t for t, _ in sent[:-1]) == "Hello there friend"
    assert server.spoken == [(of(down, TTSStartedFrame)[0].context_id, "Hello there friend")]
    assert abs(audio_secs(down) - 3 * WORD) < 0.01


async def test_the_language_and_model_reach_the_init_message(server: FakeAsyncAIServer) -> None:
    settings = Settings(voice=VOICE, model="async_flash_v1.0", language="es-MX")
    down, up = await run_test(make_tts(server, settings=settings), reply("Hola."), params=PHONE)
    assert not of(up, ErrorFrame)
    assert server.inits[0]["language"] == "es"
    assert server.inits[0]["model_id"] == "async_flash_v1.0"


async def test_the_older_arguments_still_configure_the_session(server: FakeAsyncAIServer) -> None:
    tts = AsyncAITTSService(
        api_key="test-key",
        voice_id=VOICE,
        model="async_flash_v1.0",
        url=server.url + "/text_to_speech/websocket/ws",
        params=AsyncAITTSService.InputParams(language="fr"),
    )
    tts.quiet_secs = 0.1
    down, up = await run_test(tts, reply("Salut."), params=PHONE)
    assert not of(up, ErrorFrame)
    init = server.inits[0]
    assert (init["voice"]["id"], init["model_id"], init["language"]) == (
        VOICE,
        "async_flash_v1.0",
        "fr",
    )


async def test_a_barge_in_closes_the_context_and_drops_its_audio(
    server: FakeAsyncAIServer,
) -> None:
    server.chunk_delay = 0.01  # the long sentence is still being generated at the barge-in
    long_reply = reply(" ".join(["word"] * 30) + ".")
    after: list[Frame] = [InterruptionFrame(), *reply("Fresh start.")]
    down = await run_then(
        make_tts(server), long_reply, after, when=emitted(TTSAudioRawFrame), params=PHONE
    )
    first = of(down, TTSStartedFrame)[0].context_id
    closes = [m for m in server.messages if m.get("close_context")]
    assert closes[0] == {"context_id": first, "close_context": True, "transcript": ""}
    rest = after_barge_in(down)
    assert abs(audio_secs(rest) - 2 * WORD) < 0.01
    assert [f.text for f in of(rest, TTSTextFrame)] == ["Fresh start."]
    assert len(of(rest, TTSStoppedFrame)) == 1
    assert server.connections == 1  # the same socket goes on


async def test_a_new_voice_opens_a_new_session_before_the_next_reply(
    server: FakeAsyncAIServer,
) -> None:
    frames = [
        *reply("One."),
        SleepFrame(0.4),
        TTSUpdateSettingsFrame(delta=Settings(voice="other-voice")),
        *reply("Two."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [i["voice"]["id"] for i in server.inits] == [VOICE, "other-voice"]
    assert [f.text for f in of(down, TTSTextFrame)] == ["One.", "Two."]


async def test_a_rejected_key_is_fatal(server: FakeAsyncAIServer) -> None:
    url = server.url + "/text_to_speech/websocket/ws"
    tts = AsyncAITTSService(api_key="wrong", url=url, voice_id=VOICE)
    down, up = await run_test(tts, [SleepFrame(0.2)], params=PHONE)
    fatal = of(up, FatalErrorFrame)
    assert fatal and "ASYNCAI_API_KEY" in fatal[0].error


def test_a_voice_is_required() -> None:
    from callpipe.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        AsyncAITTSService(api_key="k")


# ---------------------------------------------------------------------- HTTP


def make_http(server: FakeAsyncAIHTTPServer, **kwargs: Any) -> AsyncAIHttpTTSService:
    kwargs.setdefault("settings", Settings(voice=VOICE))
    return AsyncAIHttpTTSService(api_key="test-key", url=server.base_url, **kwargs)


async def test_http_posts_each_sentence_and_plays_the_stream(
    http_server: FakeAsyncAIHTTPServer,
) -> None:
    tts = make_http(http_server, settings=Settings(voice=VOICE, language="de"))
    down, up = await run_test(tts, reply("Guten Tag.", " Wie geht's?"), params=PHONE)
    assert not of(up, ErrorFrame)
    assert http_server.requests == [
        {
            "model_id": "async_flash_v1.5",
            "transcript": transcript,
            "voice": {"mode": "id", "id": VOICE},
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 8000},
            "language": "de",
        }
        for transcript in ("Guten Tag.", "Wie geht's?")
    ]
    headers = http_server.headers[0]
    assert headers["x-api-key"] == "test-key" and headers["version"] == "v1"
    assert {f.sample_rate for f in of(down, TTSAudioRawFrame)} == {8000}
    assert abs(audio_secs(down) - 4 * WORD) < 0.01


async def test_http_a_rejected_key_is_fatal(http_server: FakeAsyncAIHTTPServer) -> None:
    tts = AsyncAIHttpTTSService(api_key="wrong", url=http_server.base_url, voice_id=VOICE)
    down, up = await run_test(tts, reply("Hello."), params=PHONE)
    fatal = of(up, FatalErrorFrame)
    assert fatal and "ASYNCAI_API_KEY" in fatal[0].error


async def test_the_fakes_environment_reaches_both_services(
    server: FakeAsyncAIServer,
    http_server: FakeAsyncAIHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLPIPE_ASYNCAI_URL", server.url)
    monkeypatch.setenv("CALLPIPE_ASYNCAI_API_URL", http_server.base_url)
    monkeypatch.setenv("ASYNCAI_API_KEY", "test-key")
    tts = AsyncAITTSService(voice_id=VOICE)
    tts.quiet_secs = 0.1
    down, up = await run_test(tts, reply("Hi there."), params=PHONE)
    assert not of(up, ErrorFrame)
    assert server.spoken[0][1] == "Hi there."
    down, up = await run_test(AsyncAIHttpTTSService(voice_id=VOICE), reply("Hi."), params=PHONE)
    assert not of(up, ErrorFrame)
    assert [r["transcript"] for r in http_server.requests] == ["Hi."]
