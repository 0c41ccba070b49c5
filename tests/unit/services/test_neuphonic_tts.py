"""NeuphonicTTSService against FakeNeuphonicServer and NeuphonicHttpTTSService against
FakeNeuphonicHTTPServer: query and body, <STOP> per sentence, the end of a reply at its last
`stop`, interruption, errors and settings updates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.neuphonic.tts import (
    NeuphonicHttpTTSService,
    NeuphonicTTSService,
    language_to_neuphonic_lang_code,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.neuphonic import FakeNeuphonicHTTPServer, FakeNeuphonicServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import (
    WIDE,
    after_barge_in,
    audio_secs,
    barge_in,
    emitted,
    errors,
    interruption_at,
    reply,
    run_then,
    spoken,
)


@pytest.fixture
async def server() -> AsyncIterator[FakeNeuphonicServer]:
    async with FakeNeuphonicServer(secs_per_word=0.1) as fake:
        yield fake


@pytest.fixture
async def http_server() -> AsyncIterator[FakeNeuphonicHTTPServer]:
    async with FakeNeuphonicHTTPServer(secs_per_word=0.1) as fake:
        yield fake


def make_tts(server: FakeNeuphonicServer, **kwargs: object) -> NeuphonicTTSService:
    return NeuphonicTTSService(api_key="test-key", url=server.url, **kwargs)  # type: ignore[arg-type]


def make_http(server: FakeNeuphonicHTTPServer, **kwargs: object) -> NeuphonicHttpTTSService:
    return NeuphonicHttpTTSService(api_key="test-key", url=server.base_url, **kwargs)  # type: ignore[arg-type]


async def test_a_phone_call_gets_mulaw_at_8k_and_each_sentence_ends_with_stop(
    server: FakeNeuphonicServer,
) -> None:
    down, up = await run_test(
        make_tts(server), reply("Hi there.", " How are", " you?"), params=PARAMS
    )
    assert not errors(up)
    assert server.paths[0].startswith("/speak/en?")
    assert server.queries == [
        {"speed": "1.0", "lang_code": "en", "sampling_rate": "8000", "encoding": "pcm_mulaw"}
    ]
    assert server.headers[0]["x-api-key"] == "test-key"
    assert server.messages == [{"text": "Hi there. <STOP>"}, {"text": "How are you? <STOP>"}]
    kinds = [type(f) for f in down]
    assert sum(k is TTSStartedFrame for k in kinds) == 1  # one reply, one context
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame)
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    assert abs(audio_secs(down) - 5 * 0.1) < 1e-6
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    # Each sentence's text follows its own audio, before the next sentence's.
    assert spoken(down) == ["Hi there.", "How are you?"]
    first_text = next(i for i, f in enumerate(down) if isinstance(f, TTSTextFrame))
    assert abs(audio_secs(down[:first_text]) - 0.2) < 1e-6


async def test_wideband_asks_for_linear_pcm_and_sends_the_options(
    server: FakeNeuphonicServer,
) -> None:
    settings = NeuphonicTTSService.Settings(
        voice="v-1", language=Language.ES_MX, speed=1.2, temperature=0.4, ipa_key="es-castilian"
    )
    down, up = await run_test(make_tts(server, settings=settings), reply("Hola."), params=WIDE)
    assert not errors(up)
    assert server.paths[0].startswith("/speak/es?")
    assert server.queries[0] == {
        "speed": "1.2",
        "temperature": "0.4",
        "lang_code": "es",
        "voice_id": "v-1",
        "sampling_rate": "16000",
        "encoding": "pcm_linear",
        "ipa_key": "es-castilian",
    }
    assert abs(audio_secs(down) - 0.1) < 1e-6


async def test_a_rate_neuphonic_lacks_is_asked_lower_and_resampled(
    server: FakeNeuphonicServer,
) -> None:
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=48000)
    down, up = await run_test(make_tts(server), reply("One two three."), params=params)
    assert not errors(up)
    assert server.queries[0]["sampling_rate"] == "24000"
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {48000}
    assert abs(audio_secs(down) - 0.3) < 0.01


async def test_token_mode_streams_the_text_and_stops_at_the_end(
    server: FakeNeuphonicServer,
) -> None:
    tts = make_tts(server, text_aggregation_mode="token")
    down, up = await run_test(tts, reply("Hi", " there", "."), params=PARAMS)
    assert not errors(up)
    assert server.messages == [
        {"text": "Hi"},
        {"text": " there"},
        {"text": "."},
        {"text": " <STOP>"},
    ]
    assert server.passages == ["Hi there. "]
    assert spoken(down) == ["Hi there."]
    kinds = [type(f) for f in down]
    assert len(kinds) - 1 - kinds[::-1].index(TTSAudioRawFrame) < kinds.index(TTSTextFrame)


async def test_replies_back_to_back_keep_their_own_audio(server: FakeNeuphonicServer) -> None:
    down, up = await run_test(
        make_tts(server), [*reply("One two."), *reply("Three.")], params=PARAMS
    )
    assert not errors(up)
    stopped = [i for i, f in enumerate(down) if isinstance(f, TTSStoppedFrame)]
    assert len(stopped) == 2
    assert abs(audio_secs(down[: stopped[0]]) - 0.2) < 1e-6
    assert abs(audio_secs(down[stopped[0] :]) - 0.1) < 1e-6
    assert spoken(down) == ["One two.", "Three."]


async def test_interrupting_a_reply_still_generating_replaces_the_socket(
    server: FakeNeuphonicServer,
) -> None:
    server.chunk_delay = 0.02
    down = await barge_in(make_tts(server), params=PARAMS, tail=" More text.")
    # Neuphonic has no cancel message: a new socket stops the generation.
    assert server.connections == 2 and server.closed >= 1
    rest = after_barge_in(down)
    assert spoken(rest) == ["Fresh start."]
    assert abs(audio_secs(rest) - 0.2) < 1e-6


async def test_when_no_new_socket_opens_the_cut_reply_drains_and_the_next_plays(
    server: FakeNeuphonicServer,
) -> None:
    server.chunk_delay = 0.01
    long = " ".join(["word"] * 20) + "."
    before: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame(long),
        LLMTextFrame(" More text."),
    ]
    after: list[Frame] = [InterruptionFrame(), *reply("Fresh start.")]

    def playing(out: list[Frame]) -> bool:
        if not emitted(TTSAudioRawFrame)(out):
            return False
        server.fail_handshakes.append(400)  # from now on a new socket is refused
        return True

    down = await run_then(make_tts(server), before, after, when=playing, params=PARAMS)
    assert server.connections == 1
    cut = interruption_at(down)
    old = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    rest = down[cut:]
    # The cut reply's audio still arriving on the old socket is dropped; the next reply's, after
    # it, is all played, with its text.
    assert not [f for f in rest if isinstance(f, TTSAudioRawFrame) and f.context_id in old]
    assert spoken(rest) == ["Fresh start."]
    assert abs(audio_secs(rest) - 0.2) < 1e-6


async def test_token_mode_interruption_ends_the_streamed_text(
    server: FakeNeuphonicServer,
) -> None:
    before: list[Frame] = [LLMFullResponseStartFrame(), LLMTextFrame("Half a")]
    after: list[Frame] = [InterruptionFrame(), *reply("Next", " one.")]
    tts = make_tts(server, text_aggregation_mode="token")

    def sent(_: list[Frame]) -> bool:
        if server.messages != [{"text": "Half a"}]:
            return False
        server.fail_handshakes.append(400)  # the old socket stays: its buffer must be ended
        return True

    down = await run_then(tts, before, after, when=sent, params=PARAMS)
    assert server.connections == 1
    # The cut text is closed with its own <STOP>, not spoken with the next reply's.
    assert server.passages == ["Half a ", "Next one. "]
    assert spoken(down[interruption_at(down) :]) == ["Next one."]
    assert abs(audio_secs(down[interruption_at(down) :]) - 0.2) < 1e-6


async def test_a_reply_whose_stop_never_comes_does_not_hold_up_the_next(
    server: FakeNeuphonicServer,
) -> None:
    server.skip_stop = 1
    frames = [*reply("Lost end."), SleepFrame(0.8), *reply("Next one.")]
    down, up = await run_test(make_tts(server, context_timeout_secs=0.3), frames, params=PARAMS)
    assert not errors(up)
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert spoken(down)[-1] == "Next one."
    # The timed-out reply left the line: the next one's audio is its own, all of it.
    second = [i for i, f in enumerate(down) if isinstance(f, TTSStartedFrame)][1]
    assert abs(audio_secs(down[second:]) - 0.2) < 1e-6


async def test_a_dropped_socket_reconnects_and_the_cut_reply_closes(
    server: FakeNeuphonicServer,
) -> None:
    server.drop_after_chunks = 2
    frames = [*reply("One two three four five six."), SleepFrame(0.3), *reply("After drop.")]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert server.connections == 2
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    # Which words of the cut sentence were heard is unknown: its text is not recorded.
    assert spoken(down) == ["After drop."]
    assert not [f for f in up if isinstance(f, ErrorFrame) and f.fatal]


async def test_rejected_key_is_fatal_at_start(server: FakeNeuphonicServer) -> None:
    tts = NeuphonicTTSService(api_key="wrong", url=server.url)
    _, up = await run_test(tts, [SleepFrame(10)], params=PARAMS)
    assert errors(up) and errors(up)[0].fatal
    assert "403" in errors(up)[0].error and "NEUPHONIC_API_KEY" in errors(up)[0].error


def test_key_and_encoding_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEUPHONIC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="NEUPHONIC_API_KEY"):
        NeuphonicTTSService()
    with pytest.raises(ConfigurationError, match="pcm_linear"):
        NeuphonicTTSService(api_key="k", encoding="mp3")


async def test_encoding_can_be_forced(server: FakeNeuphonicServer) -> None:
    down, up = await run_test(make_tts(server, encoding="pcm_linear"), reply("One."), params=PARAMS)
    assert not errors(up)
    assert server.queries[0]["encoding"] == "pcm_linear"
    assert abs(audio_secs(down) - 0.1) < 1e-6


async def test_older_params_and_settings_precedence(server: FakeNeuphonicServer) -> None:
    older = NeuphonicTTSService.InputParams(language="de", speed=0.8)
    tts = make_tts(server, voice_id="v-old", params=older)
    assert tts.settings.language == "de" and tts.settings.speed == 0.8
    assert tts.settings.voice == "v-old"
    both = make_tts(server, params=older, settings=NeuphonicTTSService.Settings(speed=1.5))
    assert both.settings.language == "en" and both.settings.speed == 1.5


async def test_a_settings_update_reconnects_between_replies(server: FakeNeuphonicServer) -> None:
    update = NeuphonicTTSService.Settings(voice="v-2", speed=0.9)
    frames = [
        *reply("One two."),
        TTSUpdateSettingsFrame(delta=update),
        SleepFrame(0.1),
        *reply("Three."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    assert server.connections == 2
    assert server.queries[1]["voice_id"] == "v-2" and server.queries[1]["speed"] == "0.9"
    assert server.passages == ["One two. ", "Three. "]
    assert spoken(down) == ["One two.", "Three."]


async def test_a_settings_update_mid_reply_waits_for_the_reply(
    server: FakeNeuphonicServer,
) -> None:
    server.chunk_delay = 0.01
    frames = [
        *reply("One two three four."),
        TTSUpdateSettingsFrame(delta=NeuphonicTTSService.Settings(voice="v-2")),
        *reply("Five."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    assert server.connections == 2
    assert "voice_id" not in server.queries[0] and server.queries[1]["voice_id"] == "v-2"
    # The first reply was spoken whole on the old socket, the second on the new one.
    assert server.passages == ["One two three four. ", "Five. "]
    assert abs(audio_secs(down) - 0.5) < 1e-6
    assert spoken(down) == ["One two three four.", "Five."]


def test_language_codes() -> None:
    assert language_to_neuphonic_lang_code(Language.ES_MX) == "es"
    assert language_to_neuphonic_lang_code(Language.PT_BR) == "pt"
    assert language_to_neuphonic_lang_code("en-GB") == "en"


# ---------------------------------------------------------------------- HTTP


async def test_http_posts_each_sentence_and_asks_for_mulaw_on_a_call(
    http_server: FakeNeuphonicHTTPServer,
) -> None:
    tts = make_http(http_server, voice_id="v-1")
    down, up = await run_test(tts, reply("Hi there.", " How are you?"), params=PARAMS)
    assert not errors(up)
    assert http_server.paths == ["/sse/speak/en", "/sse/speak/en"]
    assert http_server.headers[0]["x-api-key"] == "test-key"
    assert http_server.requests[0] == {
        "text": "Hi there.",
        "speed": 1.0,
        "lang_code": "en",
        "voice_id": "v-1",
        "sampling_rate": 8000,
        "encoding": "pcm_mulaw",
    }
    assert [r["text"] for r in http_server.requests] == ["Hi there.", "How are you?"]
    assert abs(audio_secs(down) - 0.5) < 1e-6
    assert spoken(down) == ["Hi there.", "How are you?"]


async def test_http_wideband_linear_pcm_and_options(
    http_server: FakeNeuphonicHTTPServer,
) -> None:
    settings = NeuphonicHttpTTSService.Settings(language="fr", temperature=0.3)
    down, up = await run_test(
        make_http(http_server, settings=settings), reply("Salut."), params=WIDE
    )
    assert not errors(up)
    assert http_server.paths == ["/sse/speak/fr"]
    body = http_server.requests[0]
    assert body["encoding"] == "pcm_linear" and body["sampling_rate"] == 16000
    assert body["temperature"] == 0.3 and body["lang_code"] == "fr"
    assert abs(audio_secs(down) - 0.1) < 1e-6


async def test_http_rejected_key_is_fatal(http_server: FakeNeuphonicHTTPServer) -> None:
    tts = NeuphonicHttpTTSService(api_key="wrong", url=http_server.base_url)
    _, up = await run_test(tts, reply("Hello."), params=PARAMS)
    assert errors(up) and errors(up)[0].fatal
    assert "403" in errors(up)[0].error and "NEUPHONIC_API_KEY" in errors(up)[0].error


async def test_http_an_error_event_is_reported_and_the_reply_goes_on(
    http_server: FakeNeuphonicHTTPServer,
) -> None:
    http_server.error_after = 1
    down, up = await run_test(
        make_http(http_server), reply("One two three.", " Four."), params=PARAMS
    )
    assert errors(up) and not errors(up)[0].fatal
    assert "synthesis failed" in errors(up)[0].error
    assert abs(audio_secs(down) - 0.2) < 1e-6  # one word of the first, then the second
    assert spoken(down) == ["Four."]  # the cut sentence's text is not recorded as spoken
