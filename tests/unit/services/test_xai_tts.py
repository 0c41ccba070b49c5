"""XAITTSService against FakeXAITTSServer and XAIHttpTTSService against FakeXAIHTTPTTSServer:
audio format, utterances, word timing, interruption, errors and settings updates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    FatalErrorFrame,
    LLMFullResponseEndFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.xai.tts import (
    XAIHttpTTSService,
    XAITTSService,
    language_to_xai_language,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.xai import FakeXAIHTTPTTSServer, FakeXAITTSServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE, WIDE, after_barge_in, audio_secs, barge_in, errors, reply, spoken

SPW = 0.1


@pytest.fixture
async def server() -> AsyncIterator[FakeXAITTSServer]:
    async with FakeXAITTSServer(secs_per_word=SPW) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[FakeXAIHTTPTTSServer]:
    async with FakeXAIHTTPTTSServer(secs_per_word=SPW) as fake:
        yield fake


def make_tts(server: FakeXAITTSServer, **kwargs: object) -> XAITTSService:
    return XAITTSService(api_key="test-key", base_url=server.url, **kwargs)  # type: ignore[arg-type]


def make_http(server: FakeXAIHTTPTTSServer, **kwargs: object) -> XAIHttpTTSService:
    return XAIHttpTTSService(api_key="test-key", base_url=server.base_url, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the socket


async def test_phone_call_gets_mulaw_and_each_sentence_is_an_utterance(
    server: FakeXAITTSServer,
) -> None:
    down, up = await run_test(
        make_tts(server), reply("Hi there.", " How are", " you?"), params=PHONE
    )
    assert not errors(up)
    assert server.queries == [
        {
            "voice": "eve",
            "language": "en",
            "codec": "mulaw",
            "sample_rate": "8000",
            "with_timestamps": "true",
        }
    ]
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert server.messages == [
        {"type": "text.delta", "delta": "Hi there."},
        {"type": "text.done"},
        {"type": "text.delta", "delta": "How are you?"},
        {"type": "text.done"},
    ]
    assert abs(audio_secs(down) - 5 * SPW) < 1e-6
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)


async def test_words_follow_their_audio_across_utterances(server: FakeXAITTSServer) -> None:
    down, up = await run_test(make_tts(server), reply("One two three.", " Four five."), params=WIDE)
    assert not errors(up)
    assert server.queries[0]["codec"] == "pcm" and server.queries[0]["sample_rate"] == "16000"
    assert spoken(down) == ["One", "two", "three.", "Four", "five."]
    heard = 0.0
    for frame in down:
        if isinstance(frame, TTSAudioRawFrame):
            heard += len(frame.audio) / 2 / frame.sample_rate
        elif isinstance(frame, TTSTextFrame):
            n = ["One", "two", "three.", "Four", "five."].index(frame.text) + 1
            # The second utterance's times restart at 0: they count from the first's audio.
            assert heard >= n * SPW - 1e-6, frame


async def test_without_timestamps_the_text_follows_all_the_audio(
    server: FakeXAITTSServer,
) -> None:
    settings = XAITTSService.Settings(with_timestamps=False)
    down, _ = await run_test(
        make_tts(server, settings=settings), reply("Hello there."), params=PHONE
    )
    assert server.queries[0]["with_timestamps"] == "false"
    assert spoken(down) == ["Hello there."]
    text_at = next(i for i, f in enumerate(down) if isinstance(f, TTSTextFrame))
    assert text_at > max(i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame))


async def test_token_mode_sends_text_done_at_the_reply_end(server: FakeXAITTSServer) -> None:
    tts = make_tts(server, text_aggregation_mode="token")
    down, up = await run_test(tts, reply("Hello", " there", " friend."), params=PHONE)
    assert not errors(up)
    assert [m["type"] for m in server.messages][-1] == "text.done"
    assert [m["type"] for m in server.messages].count("text.done") == 1
    assert server.utterances == ["Hello there friend."]
    assert spoken(down) == ["Hello", "there", "friend."]


async def test_barge_in_clears_and_the_next_reply_is_heard() -> None:
    async with FakeXAITTSServer(secs_per_word=SPW, chunk_delay=0.01) as server:
        frames = await barge_in(make_tts(server), params=PHONE, tail=" More text.")
    rest = after_barge_in(frames)
    assert {"type": "text.clear"} in server.messages
    assert {"type": "audio.clear"} in server.events
    assert spoken(rest) == ["Fresh", "start."]
    assert abs(audio_secs(rest) - 2 * SPW) < 1e-6
    assert server.connections == 1


async def test_unacknowledged_clear_reopens_the_socket() -> None:
    async with FakeXAITTSServer(secs_per_word=SPW, chunk_delay=0.01) as server:
        server.answer_clear = False
        tts = make_tts(server)
        tts.clear_timeout_secs = 0.2
        frames = await barge_in(tts, params=PHONE, tail=" More text.")
    rest = after_barge_in(frames)
    assert server.connections == 2
    assert spoken(rest) == ["Fresh", "start."]


async def test_provider_error_ends_the_reply_and_the_next_is_spoken(
    server: FakeXAITTSServer,
) -> None:
    server.error_next = "voice not found"
    frames = [*reply("First one."), *reply("Second one.")]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    [error] = errors(up)
    assert "voice not found" in error.error and not isinstance(error, FatalErrorFrame)
    assert spoken(down) == ["Second", "one."]


async def test_settings_update_reopens_the_socket_between_replies(
    server: FakeXAITTSServer,
) -> None:
    frames = [
        *reply("Hello there."),
        TTSUpdateSettingsFrame(
            delta=XAITTSService.Settings(voice="ara", language=Language.PT_BR, speed=1.2)
        ),
        SleepFrame(0.2),
        *reply("Olá amigo."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    assert [q["voice"] for q in server.queries] == ["eve", "ara"]
    assert server.queries[1]["language"] == "pt-BR" and server.queries[1]["speed"] == "1.2"
    assert spoken(down) == ["Hello", "there.", "Olá", "amigo."]


async def test_rejected_key_is_fatal(server: FakeXAITTSServer) -> None:
    tts = XAITTSService(api_key="wrong", base_url=server.url)
    _, up = await run_test(tts, [SleepFrame(0.3)], params=PHONE)
    [error] = [f for f in up if isinstance(f, FatalErrorFrame)]
    assert "XAI_API_KEY" in error.error


def test_unsupported_rate_and_codec_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        XAITTSService(api_key="k", codec="mp3")
    tts = XAITTSService(api_key="k", sample_rate=11025)
    with pytest.raises(ConfigurationError):
        tts.socket_url()


def test_language_codes() -> None:
    assert language_to_xai_language(Language.PT_BR) == "pt-BR"
    assert language_to_xai_language(Language.EN_US) == "en"
    assert language_to_xai_language(Language.ES) == "es-ES"


def test_default_and_env_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    tts = XAITTSService(api_key="k", sample_rate=24000)
    assert tts.socket_url().startswith("wss://api.x.ai/v1/tts?voice=eve&language=en&codec=pcm")
    monkeypatch.setenv("CALLPIPE_XAI_URL", "ws://127.0.0.1:9")
    assert (
        XAITTSService(api_key="k", sample_rate=24000)
        .socket_url()
        .startswith("ws://127.0.0.1:9/v1/tts?")
    )


# ---------------------------------------------------------------------- HTTP


async def test_http_phone_call_asks_for_mulaw(http: FakeXAIHTTPTTSServer) -> None:
    settings = XAIHttpTTSService.Settings(voice="rex", text_normalization=True)
    down, up = await run_test(
        make_http(http, settings=settings), reply("Hi there.", " Bye now."), params=PHONE
    )
    assert not errors(up)
    assert http.requests[0] == {
        "text": "Hi there.",
        "voice_id": "rex",
        "language": "en",
        "output_format": {"codec": "mulaw", "sample_rate": 8000},
        "text_normalization": True,
    }
    assert http.headers[0]["authorization"] == "Bearer test-key"
    assert abs(audio_secs(down) - 4 * SPW) < 1e-6
    assert spoken(down) == ["Hi there.", "Bye now."]


async def test_http_wideband_gets_pcm(http: FakeXAIHTTPTTSServer) -> None:
    params = PipelineParams(audio_in_sample_rate=24000, audio_out_sample_rate=24000)
    down, up = await run_test(make_http(http, encoding="pcm"), reply("Hello there."), params=params)
    assert not errors(up)
    assert http.requests[0]["output_format"] == {"codec": "pcm", "sample_rate": 24000}
    assert abs(audio_secs(down) - 2 * SPW) < 1e-6


async def test_http_rejected_key_is_fatal(http: FakeXAIHTTPTTSServer) -> None:
    tts = XAIHttpTTSService(api_key="wrong", base_url=http.base_url)
    _, up = await run_test(tts, reply("Hello."), params=PHONE)
    [error] = [f for f in up if isinstance(f, FatalErrorFrame)]
    assert "XAI_API_KEY" in error.error and "401" in error.error


async def test_http_server_error_is_retried_once(http: FakeXAIHTTPTTSServer) -> None:
    http.statuses.append(503)
    down, up = await run_test(make_http(http), reply("Hello there."), params=PHONE)
    assert not errors(up)
    assert len(http.requests) == 2 and spoken(down) == ["Hello there."]
