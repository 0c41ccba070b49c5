"""InworldTTSService against FakeInworldServer and InworldHttpTTSService against
FakeInworldHTTPServer: requests, audio formats, word timing, interruption, errors, settings."""

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
    TTSUpdateSettingsFrame,
)
from callpipe.services.inworld.tts import (
    InworldHttpTTSService,
    InworldTTSService,
    format_inworld_pronunciation,
    language_to_inworld_language,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.inworld import FakeInworldHTTPServer, FakeInworldServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import (
    PHONE,
    WIDE,
    assert_words_follow_audio,
    audio_secs,
    barge_in,
    errors,
    interruption_at,
    reply,
    spoken,
)


@pytest.fixture
async def server() -> AsyncIterator[FakeInworldServer]:
    async with FakeInworldServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeInworldServer, **kwargs: Any) -> InworldTTSService:
    return InworldTTSService(api_key="test-key", url=server.url, **kwargs)


def kinds(server: FakeInworldServer) -> list[str]:
    return [next(k for k in m if k != "contextId") for m in server.messages]


async def test_a_phone_call_opens_one_context_per_reply_in_mulaw_at_8k(
    server: FakeInworldServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    assert server.headers[0]["authorization"] == "Basic test-key"
    create = server.messages[0]
    context_id = create["contextId"]
    assert create["create"] == {
        "voiceId": "Ashley",
        "modelId": "inworld-tts-2",
        "audioConfig": {"audioEncoding": "MULAW", "sampleRateHertz": 8000},
        "timestampType": "WORD",
        "timestampTransportStrategy": "ASYNC",
        "autoMode": True,
        "maxBufferDelayMs": 3000,
        "bufferCharThreshold": 250,
    }
    # autoMode: whole sentences go without a flush; the reply's end closes the context.
    assert server.messages[1:] == [
        {"send_text": {"text": "Hi there. "}, "contextId": context_id},
        {"send_text": {"text": "How are you? "}, "contextId": context_id},
        {"close_context": {}, "contextId": context_id},
    ]
    assert sum(isinstance(f, TTSStartedFrame) for f in down) == 1
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 1
    assert abs(audio_secs(down) - 0.5) < 1e-6
    assert spoken(down) == ["Hi", "there.", "How", "are", "you?"]
    assert_words_follow_audio(down, 0.1)
    kinds_ = [type(f) for f in down]
    assert kinds_.index(TTSStoppedFrame) < kinds_.index(LLMFullResponseEndFrame)


@pytest.mark.parametrize("encoding", ["PCM", "LINEAR16", "WAV"])
async def test_wideband_16_bit_formats_play_without_their_wav_headers(
    server: FakeInworldServer, encoding: str
) -> None:
    tts = make_tts(server, encoding=None if encoding == "PCM" else encoding.lower())
    down, up = await run_test(tts, reply("One two three four five."), params=WIDE)
    assert not errors(up)
    audio = server.messages[0]["create"]["audioConfig"]
    assert audio == {"audioEncoding": encoding, "sampleRateHertz": 16000}
    # A WAV header played as samples would add 22 samples per chunk (LINEAR16) or one.
    assert abs(audio_secs(down) - 0.5) < 1e-6


async def test_without_auto_mode_each_sentence_is_flushed_and_times_add_up(
    server: FakeInworldServer,
) -> None:
    server.chunk_delay = 0.005
    tts = make_tts(server, auto_mode=False)
    down, up = await run_test(tts, reply("One two three.", " Four five."), params=PHONE)
    assert not errors(up)
    texts = [m["send_text"] for m in server.messages if "send_text" in m]
    assert texts == [
        {"text": "One two three. ", "flush_context": {}},
        {"text": "Four five. ", "flush_context": {}},
    ]
    assert server.messages[0]["create"]["autoMode"] is False
    assert len(server.generations) == 2
    # The second generation's times restart at 0: they count from the first one's audio.
    assert spoken(down) == ["One", "two", "three.", "Four", "five."]
    assert_words_follow_audio(down, 0.1)


async def test_token_mode_streams_verbatim_and_the_close_flushes() -> None:
    async with FakeInworldServer() as server:
        tts = make_tts(server, text_aggregation_mode="token")
        down, up = await run_test(tts, reply("Hel", "lo the", "re, how", " are you"), params=PHONE)
    assert not errors(up)
    assert server.messages[0]["create"]["autoMode"] is False
    assert [m["send_text"]["text"] for m in server.messages if "send_text" in m] == [
        "Hel",
        "lo the",
        "re, how",
        " are you",
    ]
    assert kinds(server)[-1] == "close_context"
    assert [text for _, text in server.generations] == ["Hello there, how are you"]
    assert spoken(down) == ["Hello", "there,", "how", "are", "you"]


async def test_an_interruption_closes_the_dropped_context_and_drops_its_audio(
    server: FakeInworldServer,
) -> None:
    server.chunk_delay = 0.005
    down = await barge_in(make_tts(server), params=PHONE, tail=" More.")
    first = server.messages[0]["contextId"]
    assert {"close_context": {}, "contextId": first} in server.messages
    assert server.connections == 1
    cut = interruption_at(down)
    rest = down[cut:]
    assert not [f for f in rest if isinstance(f, TTSAudioRawFrame) and f.context_id == first]
    assert spoken(rest) == ["Fresh", "start."]
    assert abs(audio_secs(rest) - 0.2) < 1e-6


async def test_an_inworld_error_is_reported_and_the_reply_closes(
    server: FakeInworldServer,
) -> None:
    frames = [*reply("Hello."), SleepFrame(0.1)]
    tts = make_tts(server)
    server.error_next = "voice not found"
    down, up = await run_test(tts, frames, params=PHONE)
    assert errors(up) and "voice not found" in errors(up)[0].error
    assert not errors(up)[0].fatal
    assert spoken(down) == []  # nothing of the refused reply was heard
    assert any(isinstance(f, TTSStoppedFrame) for f in down)


async def test_a_rejected_key_is_fatal_at_start(server: FakeInworldServer) -> None:
    tts = InworldTTSService(api_key="wrong", url=server.url)
    _, up = await run_test(tts, [SleepFrame(10)], params=PHONE)
    assert errors(up) and errors(up)[0].fatal
    assert "401" in errors(up)[0].error and "INWORLD_API_KEY" in errors(up)[0].error


async def test_a_settings_update_applies_to_the_next_reply_on_the_same_socket(
    server: FakeInworldServer,
) -> None:
    update = InworldTTSService.Settings(voice="Dennis", speaking_rate=1.2, language="fr")
    frames = [*reply("One."), TTSUpdateSettingsFrame(delta=update), *reply("Two.")]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    assert server.connections == 1
    first, second = [m["create"] for m in server.messages if "create" in m]
    assert first["voiceId"] == "Ashley" and "language" not in first
    assert second["voiceId"] == "Dennis" and second["language"] == "fr-FR"
    assert second["audioConfig"]["speakingRate"] == 1.2
    assert spoken(down) == ["One.", "Two."]


async def test_a_dropped_socket_reconnects_and_the_cut_reply_closes(
    server: FakeInworldServer,
) -> None:
    server.drop_after_chunks = 2
    frames = [*reply("One two three four five six."), SleepFrame(0.3), *reply("After drop.")]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert server.connections == 2
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    # 0.08 s of the first reply came, less than its first word: none of it counts as spoken.
    assert spoken(down) == ["After", "drop."]
    assert not [f for f in up if f.__class__.__name__ == "ErrorFrame" and f.fatal]


async def test_a_context_inworld_never_closes_times_out(server: FakeInworldServer) -> None:
    server.skip_close = 1
    tts = make_tts(server, context_timeout_secs=0.3)
    down, up = await run_test(tts, [*reply("Lost end."), *reply("Next one.")], params=PHONE)
    assert not errors(up)
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert spoken(down)[-2:] == ["Next", "one."]


def test_older_params_settings_and_pipecat_defaults() -> None:
    params = InworldTTSService.InputParams(
        temperature=0.7, speaking_rate=0.9, auto_mode=False, max_buffer_delay_ms=500
    )
    older = InworldTTSService(api_key="k", voice_id="Dennis", params=params, sample_rate=8000)
    message = older.create_message("c1")["create"]
    assert message["voiceId"] == "Dennis" and message["temperature"] == 0.7
    assert message["audioConfig"]["speakingRate"] == 0.9
    assert message["autoMode"] is False and message["maxBufferDelayMs"] == 500
    # settings= wins: the params' synthesis options are then ignored, as in Pipecat.
    newer = InworldTTSService(
        api_key="k",
        params=params,
        settings=InworldTTSService.Settings(model="inworld-tts-1.5-mini", delivery_mode="STABLE"),
        sample_rate=8000,
    )
    message = newer.create_message("c2")["create"]
    assert message["modelId"] == "inworld-tts-1.5-mini" and message["deliveryMode"] == "STABLE"
    assert "temperature" not in message and message["autoMode"] is True
    delta = InworldTTSService.Settings.from_mapping(
        {"voiceId": "Olivia", "audioConfig": {"speakingRate": 1.1}}
    )
    assert delta.voice == "Olivia" and delta.speaking_rate == 1.1


def test_url_encoding_and_key_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    tts = InworldTTSService(api_key="k", url="ws://127.0.0.1:9")
    assert tts.url == "ws://127.0.0.1:9/tts/v1/voice:streamBidirectional"
    default = InworldTTSService(api_key="k")
    assert default.url == "wss://api.inworld.ai/tts/v1/voice:streamBidirectional"
    with pytest.raises(ConfigurationError, match="MP3"):
        InworldTTSService(api_key="k", encoding="MP3")
    monkeypatch.delenv("INWORLD_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="INWORLD_API_KEY"):
        InworldHttpTTSService()


def test_language_tags_and_pronunciation() -> None:
    assert language_to_inworld_language(Language("pt")) == "pt-BR"
    assert language_to_inworld_language("es-MX") == "es-MX"
    assert format_inworld_pronunciation("create", "kriːt") == "/kriːt/"
    assert format_inworld_pronunciation("a b", "ə biː") is None


# ---------------------------------------------------------------------- HTTP


@pytest.fixture
async def http_server() -> AsyncIterator[FakeInworldHTTPServer]:
    async with FakeInworldHTTPServer(secs_per_word=0.1) as fake:
        yield fake


def make_http(server: FakeInworldHTTPServer, **kwargs: Any) -> InworldHttpTTSService:
    return InworldHttpTTSService(
        api_key="test-key",
        aiohttp_session=object(),  # Pipecat's required session: accepted, not used
        base_url=server.base_url,
        **kwargs,
    )


async def test_http_streams_each_sentence_in_mulaw_with_word_timing(
    http_server: FakeInworldHTTPServer,
) -> None:
    down, up = await run_test(make_http(http_server), reply("Hi there.", " Bye now."), params=PHONE)
    assert not errors(up)
    assert http_server.paths == ["/tts/v1/voice:stream"] * 2
    assert http_server.requests[0] == {
        "text": "Hi there.",
        "voiceId": "Ashley",
        "modelId": "inworld-tts-2",
        "audioConfig": {"audioEncoding": "MULAW", "sampleRateHertz": 8000},
        "timestampType": "WORD",
        "timestampTransportStrategy": "ASYNC",
    }
    assert {h["authorization"] for h in http_server.headers} == {"Basic test-key"}
    assert abs(audio_secs(down) - 0.4) < 1e-6
    # The second sentence's times restart at 0: they count from the first one's audio.
    assert spoken(down) == ["Hi", "there.", "Bye", "now."]
    assert_words_follow_audio(down, 0.1)


@pytest.mark.parametrize("encoding", ["LINEAR16", "WAV"])
async def test_http_wav_headers_are_not_played(
    http_server: FakeInworldHTTPServer, encoding: str
) -> None:
    down, up = await run_test(
        make_http(http_server, encoding=encoding), reply("One two three four."), params=WIDE
    )
    assert not errors(up)
    assert http_server.requests[0]["audioConfig"] == {
        "audioEncoding": encoding,
        "sampleRateHertz": 16000,
    }
    assert abs(audio_secs(down) - 0.4) < 1e-6


async def test_http_non_streaming_posts_to_voice(http_server: FakeInworldHTTPServer) -> None:
    settings = InworldHttpTTSService.Settings(voice="Dennis", temperature=0.8, language="de")
    tts = make_http(http_server, streaming=False, encoding="LINEAR16", settings=settings)
    down, up = await run_test(tts, reply("Guten Tag."), params=PHONE)
    assert not errors(up)
    assert http_server.paths == ["/tts/v1/voice"]
    body = http_server.requests[0]
    assert body["voiceId"] == "Dennis" and body["temperature"] == 0.8
    assert body["language"] == "de-DE"
    assert abs(audio_secs(down) - 0.2) < 1e-6
    assert spoken(down) == ["Guten", "Tag."]


async def test_http_an_error_line_mid_stream_is_reported(
    http_server: FakeInworldHTTPServer,
) -> None:
    http_server.stream_error_after = 2
    down, up = await run_test(
        make_http(http_server), reply("One two three four.", " Five six."), params=PHONE
    )
    assert errors(up) and "synthesis failed" in errors(up)[0].error
    assert not errors(up)[0].fatal
    assert abs(audio_secs(down) - 0.08 - 0.2) < 1e-6
    # No word of the cut sentence was heard whole; the next sentence was.
    assert spoken(down) == ["Five", "six."]


async def test_http_rejected_key_is_fatal(http_server: FakeInworldHTTPServer) -> None:
    tts = InworldHttpTTSService(api_key="wrong", base_url=http_server.base_url)
    _, up = await run_test(tts, reply("Hello."), params=PHONE)
    assert errors(up) and errors(up)[0].fatal
    assert "401" in errors(up)[0].error and "INWORLD_API_KEY" in errors(up)[0].error
