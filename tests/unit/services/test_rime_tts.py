"""RimeTTSService against FakeRimeServer: query, context ids, flushes, word timing, interruption,
errors and settings updates."""

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
from callpipe.services.rime.tts import (
    RimeHttpTTSService,
    RimeTTSService,
    language_to_rime_language,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.rime import FakeRimeHTTPServer, FakeRimeServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import (
    after_barge_in,
    audio_secs,
    barge_in,
    errors,
    interruption_at,
    reply,
    run_then,
)


@pytest.fixture
async def server() -> AsyncIterator[FakeRimeServer]:
    async with FakeRimeServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeRimeServer, **kwargs: object) -> RimeTTSService:
    return RimeTTSService(api_key="test-key", voice_id="astra", url=server.url, **kwargs)  # type: ignore[arg-type]


def texts(server: FakeRimeServer) -> list[dict[str, object]]:
    return [m for m in server.messages if "text" in m]


async def test_a_phone_call_gets_mulaw_at_8k_and_each_sentence_is_flushed(
    server: FakeRimeServer,
) -> None:
    down, up = await run_test(
        make_tts(server), reply("Hi there.", " How are", " you?"), params=PARAMS
    )
    assert not errors(up)
    assert server.queries == [
        {"speaker": "astra", "modelId": "coda", "audioFormat": "mulaw", "samplingRate": "8000"}
    ]
    assert server.headers[0]["authorization"] == "Bearer test-key"
    # Whole sentences, each flushed at once, each with its own contextId of the same reply.
    assert [m.get("text", m.get("operation")) for m in server.messages] == [
        "Hi there. ",
        "flush",
        "How are you? ",
        "flush",
    ]
    ids = [str(m["contextId"]) for m in texts(server)]
    assert len(set(ids)) == 2 and ids[0].rsplit("-", 1)[0] == ids[1].rsplit("-", 1)[0]
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame)
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    assert sum(k is TTSStartedFrame for k in kinds) == 1  # one reply, one context
    assert abs(audio_secs(down) - 5 * 0.1) < 1e-6
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}


async def test_wideband_output_asks_for_pcm_at_the_output_rate(server: FakeRimeServer) -> None:
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
    down, up = await run_test(make_tts(server), reply("Hello there."), params=params)
    assert not errors(up)
    assert server.queries[0]["audioFormat"] == "pcm"
    assert server.queries[0]["samplingRate"] == "16000"
    assert abs(audio_secs(down) - 0.2) < 1e-6


async def test_words_follow_their_audio_across_runs() -> None:
    # Punctuation as a word of its own (as Mist v2 sends it) is joined to the word before it,
    # and a second run's times (restarting at 0) count from the end of the first run's audio.
    async with FakeRimeServer(split_punctuation=True, chunk_delay=0.005) as server:
        # The first sentence goes once the second starts; its run is under way when that ends.
        frames = reply("One two three.", " Four", " five.")
        frames.insert(3, SleepFrame(0.02))
        down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    assert len(server.runs) == 2
    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert words == ["One", "two", "three.", "Four", "five."]
    for i, frame in enumerate(down):
        if isinstance(frame, TTSTextFrame):
            n = words.index(frame.text) + 1
            assert audio_secs(down[:i]) >= n * 0.1 - 1e-6


async def test_token_mode_streams_verbatim_and_flushes_at_the_end() -> None:
    # segment=never: Rime speaks only on flush, so the reply's end must send it.
    async with FakeRimeServer() as server:
        tts = make_tts(
            server,
            text_aggregation_mode="token",
            settings=RimeTTSService.Settings(segment="never"),
        )
        down, up = await run_test(tts, reply("Hel", "lo the", "re, how", " are you"), params=PARAMS)
    assert not errors(up)
    assert server.queries[0]["segment"] == "never"
    assert [m.get("text", m.get("operation")) for m in server.messages] == [
        "Hel",
        "lo the",
        "re, how",
        " are you",
        "flush",
    ]
    assert server.runs == [("Hello there, how are you", texts(server)[-1]["contextId"])]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == [
        "Hello",
        "there,",
        "how",
        "are",
        "you",
    ]
    assert isinstance(down[-2], LLMFullResponseEndFrame)


async def test_a_reply_whose_audio_ended_before_its_end_closes_at_once(
    server: FakeRimeServer,
) -> None:
    # The last sentence's `done` comes before the LLM's end: no flush is left to wait for.
    frames: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame("All done here. "),
        LLMTextFrame("Bye!"),
        SleepFrame(0.3),
        LLMFullResponseEndFrame(),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    assert [f.text for f in down if isinstance(f, TTSTextFrame)][-1] == "Bye!"


async def test_interrupting_a_reply_rime_still_generates_replaces_the_socket(
    server: FakeRimeServer,
) -> None:
    server.chunk_delay = 0.02
    down = await barge_in(make_tts(server), params=PARAMS, tail=" More text.")
    # `clear` would not stop the run under way (Rime's docs): a new socket does.
    assert server.connections == 2
    assert {"operation": "clear"} not in server.messages
    rest = after_barge_in(down)
    assert [f.text for f in rest if isinstance(f, TTSTextFrame)] == ["Fresh", "start."]
    assert abs(audio_secs(rest) - 0.2) < 1e-6


async def test_interrupting_a_reply_whose_audio_is_all_here_only_clears(
    server: FakeRimeServer,
) -> None:
    before: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame("One two."),
        LLMTextFrame(" Three"),  # held by the sentence aggregator: never sent
    ]
    after: list[Frame] = [InterruptionFrame(), *reply("Fresh start.")]
    down = await run_then(
        make_tts(server),
        before,
        after,
        # "two." is released at the run's `done`: Rime has nothing left to generate.
        when=lambda out: any(isinstance(f, TTSTextFrame) and f.text == "two." for f in out),
        params=PARAMS,
    )
    assert server.connections == 1
    assert [m.get("text", m.get("operation")) for m in server.messages] == [
        "One two. ",
        "flush",
        "clear",
        "Fresh start. ",
        "flush",
    ]
    cut = interruption_at(down)
    assert [f.text for f in down[cut:] if isinstance(f, TTSTextFrame)] == ["Fresh", "start."]


async def test_a_new_reply_waits_for_the_one_rime_is_generating(server: FakeRimeServer) -> None:
    # Two replies back to back: the second's text would merge into the first's pending run
    # (tagged with the second's id), so it is sent only once the first is done.
    server.chunk_delay = 0.005
    frames = [*reply("One two three.", " Four."), *reply("Five.")]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    first_id = str(texts(server)[0]["contextId"]).rsplit("-", 1)[0]
    runs = [(text.split(), str(ctx).rsplit("-", 1)[0] == first_id) for text, ctx in server.runs]
    assert runs[-1] == (["Five."], False)
    assert [words for words, first in runs if first] in (
        [["One", "two", "three.", "Four."]],
        [["One", "two", "three."], ["Four."]],
    )
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert abs(audio_secs(down) - 0.5) < 1e-6


async def test_a_reply_rime_never_finishes_does_not_hold_up_the_next(
    server: FakeRimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.skip_done = 1
    frames = [*reply("Lost end."), SleepFrame(0.1), *reply("Next one."), *reply("And more.")]
    tts = make_tts(server, context_timeout_secs=0.3)
    down, up = await run_test(tts, frames, params=PARAMS)
    assert not errors(up)
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 3
    assert [f.text for f in down if isinstance(f, TTSTextFrame)][-4:] == [
        "Next",
        "one.",
        "And",
        "more.",
    ]
    # The timed-out reply was let go: the next ones did not wait for it as well.
    assert "still generating" not in caplog.text


async def test_a_dropped_socket_reconnects_and_the_cut_reply_closes(
    server: FakeRimeServer,
) -> None:
    server.drop_after_chunks = 2
    frames = [*reply("One two three four five six."), SleepFrame(0.3), *reply("After drop.")]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert server.connections == 2
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert [f.text for f in down if isinstance(f, TTSTextFrame)][-2:] == ["After", "drop."]
    assert not [f for f in up if isinstance(f, ErrorFrame) and f.fatal]


async def test_a_rime_error_is_reported_and_the_reply_closes(server: FakeRimeServer) -> None:
    server.error_next = "text longer than 1000 characters"
    down, up = await run_test(make_tts(server), reply("Hello."), params=PARAMS)
    assert errors(up) and "longer than 1000" in errors(up)[0].error
    assert not errors(up)[0].fatal
    assert any(isinstance(f, TTSStoppedFrame) for f in down)
    assert isinstance(down[-2], LLMFullResponseEndFrame)


async def test_rejected_key_is_fatal_at_start(server: FakeRimeServer) -> None:
    tts = RimeTTSService(api_key="wrong", voice_id="astra", url=server.url)
    _, up = await run_test(tts, [SleepFrame(10)], params=PARAMS)
    assert errors(up) and errors(up)[0].fatal
    assert "401" in errors(up)[0].error and "RIME_API_KEY" in errors(up)[0].error


def test_key_and_voice_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RIME_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="RIME_API_KEY"):
        RimeTTSService(voice_id="astra")
    with pytest.raises(ConfigurationError, match="voice"):
        RimeTTSService(api_key="k")


async def test_model_options_go_in_the_query(server: FakeRimeServer) -> None:
    mist = RimeTTSService.Settings(
        voice="cove",
        model="mistv2",
        language=Language("es-MX"),
        reduceLatency=True,
        speedAlpha=1.1,
        temperature=0.5,
    )
    coda = RimeTTSService.Settings(reduceLatency=True, temperature=0.5, timeScaleFactor=1.2)
    for settings in (mist, coda):
        _, up = await run_test(make_tts(server, settings=settings), reply("Hola."), params=PARAMS)
        assert not errors(up)
    first, second = server.queries
    assert first["speaker"] == "cove" and first["modelId"] == "mistv2"
    assert first["lang"] == "spa"  # Rime's three-letter code, for every model
    assert first["reduceLatency"] == "true" and first["speedAlpha"] == "1.1"
    assert "temperature" not in first  # a Coda option
    assert second["modelId"] == "coda" and second["temperature"] == "0.5"
    assert second["timeScaleFactor"] == "1.2" and "reduceLatency" not in second


async def test_older_params_and_settings_precedence(server: FakeRimeServer) -> None:
    params = RimeTTSService.InputParams(language="de", segment="immediate", save_oovs=False)
    tts = make_tts(server, model="mistv2", params=params)
    assert tts.settings.language == "de"
    await run_test(tts, reply("Hallo."), params=PARAMS)
    # settings= wins: params are then ignored entirely, as in Pipecat.
    await run_test(
        make_tts(server, params=params, settings=RimeTTSService.Settings(segment="never")),
        reply("Hi."),
        params=PARAMS,
    )
    first, second = server.queries
    assert first["lang"] == "ger" and first["segment"] == "immediate"
    assert first["saveOovs"] == "false"
    assert "lang" not in second and second["segment"] == "never"


async def test_a_language_without_timestamps_gets_its_text_after_the_audio(
    server: FakeRimeServer,
) -> None:
    settings = RimeTTSService.Settings(language=Language("fr"))
    down, up = await run_test(
        make_tts(server, settings=settings), reply("Bonjour à tous.", " Merci."), params=PARAMS
    )
    assert not errors(up)
    assert not [e for e in server.events if e["type"] == "timestamps"]
    spoken = [i for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert [down[i].text for i in spoken] == ["Bonjour à tous. Merci."]  # type: ignore[attr-defined]
    assert spoken[0] > max(i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame))


async def test_a_settings_update_reconnects_between_replies(server: FakeRimeServer) -> None:
    update = RimeTTSService.Settings(voice="luna", speedAlpha=0.9)
    frames = [
        *reply("One two."),
        TTSUpdateSettingsFrame(delta=update),
        SleepFrame(0.1),
        *reply("Three."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    assert server.connections == 2
    assert server.queries[1]["speaker"] == "luna" and server.queries[1]["speedAlpha"] == "0.9"
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["One", "two.", "Three."]


async def test_a_settings_update_mid_reply_waits_for_the_reply(server: FakeRimeServer) -> None:
    server.chunk_delay = 0.01
    frames: list[Frame] = [
        SleepFrame(0.1),  # connected
        LLMFullResponseStartFrame(),
        LLMTextFrame("One two three."),
        LLMTextFrame(" Four."),  # "One two three." goes now, "Four." at the reply's end
        TTSUpdateSettingsFrame(delta=RimeTTSService.Settings(voice="luna")),
        LLMFullResponseEndFrame(),
        *reply("Five."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    assert [q["speaker"] for q in server.queries] == ["astra", "luna"]
    # The reply under way finished in the old voice; the next one came on the new socket.
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == [
        "One",
        "two",
        "three.",
        "Four.",
        "Five.",
    ]
    assert abs(audio_secs(down) - 0.5) < 1e-6


def test_language_codes_and_markup_helpers() -> None:
    assert language_to_rime_language(Language("pt-BR")) == "por"
    assert language_to_rime_language("ja") == "jpn"
    assert language_to_rime_language("eng") == "eng"
    assert RimeTTSService.PAUSE_TAG(0.2) == "<200>"
    assert RimeTTSService.SPELL("ABC") == "spell(ABC)"


def test_a_url_without_a_path_gets_ws3() -> None:
    tts = RimeTTSService(api_key="k", voice_id="astra", url="ws://127.0.0.1:9")
    assert tts.socket_url().startswith("ws://127.0.0.1:9/ws3?speaker=astra&modelId=coda")
    legacy = RimeTTSService(api_key="k", voice_id="astra", url="wss://users-ws.rime.ai/ws2")
    assert legacy.socket_url().startswith("wss://users-ws.rime.ai/ws2?")


# ---------------------------------------------------------------------- HTTP


@pytest.fixture
async def http_server() -> AsyncIterator[FakeRimeHTTPServer]:
    async with FakeRimeHTTPServer(secs_per_word=0.1) as fake:
        yield fake


def make_http(server: FakeRimeHTTPServer, **kwargs: object) -> RimeHttpTTSService:
    return RimeHttpTTSService(
        api_key="test-key",
        voice_id="astra",
        aiohttp_session=object(),  # Pipecat's required session: accepted, not used
        base_url=server.base_url,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_http_posts_each_sentence_and_asks_for_mulaw_on_a_call(
    http_server: FakeRimeHTTPServer,
) -> None:
    down, up = await run_test(
        make_http(http_server), reply("Hi there.", " Bye now."), params=PARAMS
    )
    assert not errors(up)
    assert http_server.requests == [
        {"text": "Hi there.", "speaker": "astra", "modelId": "coda", "samplingRate": 8000,
         "lang": "eng"},
        {"text": "Bye now.", "speaker": "astra", "modelId": "coda", "samplingRate": 8000,
         "lang": "eng"},
    ]  # fmt: skip
    assert {h["accept"] for h in http_server.headers} == {"audio/PCMU"}
    assert {h["authorization"] for h in http_server.headers} == {"Bearer test-key"}
    assert abs(audio_secs(down) - 0.4) < 1e-6
    # No word timing: each sentence's text follows its audio.
    spoken = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert spoken == ["Hi there.", "Bye now."]
    first_text = next(i for i, f in enumerate(down) if isinstance(f, TTSTextFrame))
    assert audio_secs(down[:first_text]) >= 0.2 - 1e-6


async def test_http_wideband_pcm_and_model_options(http_server: FakeRimeHTTPServer) -> None:
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
    settings = RimeHttpTTSService.Settings(
        model="mistv2", language="es", reduceLatency=True, temperature=0.3
    )
    down, up = await run_test(
        make_http(http_server, settings=settings), reply("Hola."), params=params
    )
    assert not errors(up)
    assert http_server.headers[0]["accept"] == "audio/L16"
    body = http_server.requests[0]
    assert body["modelId"] == "mistv2" and body["lang"] == "spa" and body["samplingRate"] == 16000
    assert body["reduceLatency"] is True and "temperature" not in body  # a Coda option
    assert abs(audio_secs(down) - 0.1) < 1e-6


async def test_http_older_params_as_pipecat_sends_them(http_server: FakeRimeHTTPServer) -> None:
    params = RimeHttpTTSService.InputParams(language="de", speed_alpha=1.2)
    await run_test(
        make_http(http_server, model="mistv2", params=params), reply("Hallo."), params=PARAMS
    )
    body = http_server.requests[0]
    assert body["lang"] == "ger" and body["speedAlpha"] == 1.2
    assert body["reduceLatency"] is False and body["pauseBetweenBrackets"] is False


async def test_http_rejected_key_is_fatal(http_server: FakeRimeHTTPServer) -> None:
    tts = RimeHttpTTSService(api_key="wrong", voice_id="astra", base_url=http_server.base_url)
    _, up = await run_test(tts, reply("Hello."), params=PARAMS)
    assert errors(up) and errors(up)[0].fatal
    assert "401" in errors(up)[0].error and "RIME_API_KEY" in errors(up)[0].error
