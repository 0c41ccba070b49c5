"""CartesiaTTSService against FakeCartesiaServer: contexts, word timing, cancel, errors, drops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.tts_service import TextAggregationMode
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.utils.errors import ErrorCategory

from .helpers import PHONE as PARAMS
from .helpers import assert_reply_framed, audio_secs, emitted, interruption_at, reply, run_then


@pytest.fixture
async def server() -> AsyncIterator[FakeCartesiaServer]:
    async with FakeCartesiaServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeCartesiaServer, **kwargs: object) -> CartesiaTTSService:
    return CartesiaTTSService(api_key="test-key", voice_id="voice-1", url=server.url, **kwargs)  # type: ignore[arg-type]


async def test_reply_uses_one_context_with_continuations(server: FakeCartesiaServer) -> None:
    down, up = await run_test(
        make_tts(server), reply("Hi there.", " How are", " you?"), params=PARAMS
    )
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    inputs = [m for m in server.messages if "transcript" in m]
    assert [m["transcript"] for m in inputs] == ["Hi there. ", "How are you? ", ""]
    assert [m["continue"] for m in inputs] == [True, True, False]
    assert len({m["context_id"] for m in inputs}) == 1
    # Phone rate: native 8 kHz u-law from Cartesia, nothing resampled.
    assert inputs[0]["output_format"] == {
        "container": "raw",
        "encoding": "pcm_mulaw",
        "sample_rate": 8000,
    }
    assert inputs[0]["voice"] == {"mode": "id", "id": "voice-1"}
    # Whole sentences: no server-side buffering (the documented default holds text 3 s).
    assert all(m["max_buffer_delay_ms"] == 0 for m in inputs)

    assert_reply_framed(down)
    assert abs(audio_secs(down) - 5 * 0.1) < 1e-6
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}


async def test_words_follow_their_audio(server: FakeCartesiaServer) -> None:
    down, _ = await run_test(make_tts(server), reply("One two three four."), params=PARAMS)
    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert words == ["One", "two", "three", "four."]
    # Pipecat 1.14's fields: a timed word is of type "word", in the reply's TTS context.
    [started] = [f for f in down if isinstance(f, TTSStartedFrame)]
    spoken = [f for f in down if isinstance(f, TTSTextFrame)]
    assert {(f.text_type, f.context_id) for f in spoken} == {("word", started.context_id)}
    assert started.context_id and started.append_to_context
    # Every word is preceded by at least the audio up to its end (the fake sends timestamps first).
    for i, frame in enumerate(down):
        if isinstance(frame, TTSTextFrame):
            n = words.index(frame.text) + 1
            assert audio_secs(down[:i]) >= n * 0.1 - 1e-6


async def test_interruption_cancels_the_context(server: FakeCartesiaServer) -> None:
    server.chunk_delay = 0.02
    long = " ".join(["word"] * 60) + "."
    before: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame(long),
        LLMTextFrame(" More text."),
    ]
    after: list[Frame] = [
        InterruptionFrame(),
        SleepFrame(0.2),
        *reply("Fresh start."),
    ]
    down = await run_then(
        make_tts(server),
        before,
        after,
        when=emitted(TTSAudioRawFrame),
        params=PARAMS,
    )
    cut = interruption_at(down)
    old = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    assert len(old) == 1
    assert server.cancelled == list(old)
    after = down[cut:]
    assert not [f for f in after if isinstance(f, TTSAudioRawFrame) and f.context_id in old]
    assert [f.text for f in after if isinstance(f, TTSTextFrame)] == ["Fresh", "start."]
    assert abs(audio_secs(after) - 0.2) < 1e-6


async def test_provider_error_is_reported_and_reply_closes(server: FakeCartesiaServer) -> None:
    server.error_next = "Invalid voice"
    down, up = await run_test(make_tts(server), reply("Hello."), params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "Invalid voice" in errors[0].error
    assert any(isinstance(f, TTSStoppedFrame) for f in down)
    assert isinstance(down[-2], LLMFullResponseEndFrame)


async def test_rejected_key_is_fatal_at_start(server: FakeCartesiaServer) -> None:
    tts = CartesiaTTSService(api_key="wrong", voice_id="v", url=server.url)
    _, up = await run_test(tts, [SleepFrame(10)], params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal
    assert errors[0].category is ErrorCategory.AUTHENTICATION
    assert "401" in errors[0].error and "CARTESIA_API_KEY" in errors[0].error


async def test_missing_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="CARTESIA_API_KEY"):
        CartesiaTTSService(voice_id="v")


async def test_dropped_socket_reconnects_once(server: FakeCartesiaServer) -> None:
    server.drop_after_chunks = 2
    frames: list[Frame] = [
        *reply("One two three four five six."),
        SleepFrame(0.3),
        *reply("After drop."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert server.connections == 2
    # The reply cut by the drop is closed, and the next reply is spoken on the new socket.
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert [f.text for f in down if isinstance(f, TTSTextFrame)][-2:] == ["After", "drop."]
    assert not [f for f in up if isinstance(f, ErrorFrame) and f.fatal]


async def test_a_reply_sent_but_unheard_when_the_socket_drops_is_spoken_on_the_new_one(
    server: FakeCartesiaServer,
) -> None:
    server.drop_after_chunks = 2
    frames: list[Frame] = [
        *reply("One two three four five six."),
        *reply("After drop."),  # sent on the first socket before it drops, no audio yet
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert server.connections == 2
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    # The first reply was cut mid-speech (not repeated); the second is spoken whole.
    assert [f.text for f in down if isinstance(f, TTSTextFrame)][-2:] == ["After", "drop."]
    assert not [f for f in up if isinstance(f, ErrorFrame) and f.fatal]


async def test_a_slow_provider_never_delays_the_pipeline() -> None:
    """A provider that accepts TCP but never answers the handshake must not hold frames back."""

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        tts = CartesiaTTSService(api_key="k", voice_id="v", url=f"ws://127.0.0.1:{port}")
        seen_while_connecting: list[bool] = []

        class Probe(FrameProcessor):
            async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
                await super().process_frame(frame, direction)
                if isinstance(frame, UserStartedSpeakingFrame):
                    assert tts._ready is not None
                    seen_while_connecting.append(not tts._ready.is_set())
                await self.push_frame(frame, direction)

        await run_test(
            Pipeline([tts, Probe()]), [UserStartedSpeakingFrame(), SleepFrame(0.05)], params=PARAMS
        )
        assert seen_while_connecting == [True]
    finally:
        server.close()


async def test_reply_text_follows_the_audio_when_timestamps_are_missing(
    server: FakeCartesiaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tts = make_tts(server)
    original = tts._request

    def no_timestamps(context_id: str, transcript: str, *, more: bool) -> dict[str, object]:
        request = original(context_id, transcript, more=more)
        request["add_timestamps"] = False
        return request

    monkeypatch.setattr(tts, "_request", no_timestamps)
    down, _ = await run_test(tts, reply("No timing here.", " Still spoken."), params=PARAMS)
    texts = [i for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert [down[i].text for i in texts] == ["No timing here. Still spoken."]  # type: ignore[attr-defined]
    assert [down[i].text_type for i in texts] == ["sentence"]  # type: ignore[attr-defined]
    last_audio = max(i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame))
    assert texts[0] > last_audio


async def test_extra_headers_go_on_the_handshake(
    server: FakeCartesiaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    handshakes: list[dict[str, str]] = []
    validate = server._server._validate

    def record(request: Any) -> Any:
        handshakes.append(dict(request.headers.raw_items()))
        return validate(request)

    monkeypatch.setattr(server._server, "_validate", record)
    tts = make_tts(
        server,
        # Pipecat 1.14: extra handshake headers; one named like ours (any case) replaces it.
        extra_headers={"X-Request-Tag": "call-42", "cartesia-version": "2025-04-16"},
    )
    _, up = await run_test(tts, reply("Hello."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert handshakes and handshakes[0]["X-Request-Tag"] == "call-42"
    assert server.versions == ["2025-04-16"]
    assert [k for k in handshakes[0] if k.lower() == "cartesia-version"] == ["cartesia-version"]
    assert handshakes[0]["Authorization"] == "Bearer test-key"


async def test_only_the_raw_container_streams(server: FakeCartesiaServer) -> None:
    for container in ("wav", "mp3"):
        with pytest.raises(ConfigurationError, match="raw"):
            make_tts(server, container=container)
    _, up = await run_test(make_tts(server, container="raw"), reply("Hi."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert server.messages[0]["output_format"]["container"] == "raw"


async def test_without_sentence_aggregation_text_streams_verbatim(
    server: FakeCartesiaServer,
) -> None:
    # TTSService's aggregate_sentences=False: each LLM chunk goes out at once, as it came, and
    # Cartesia's own buffering is left on (no max_buffer_delay_ms), as Pipecat does.
    tts = make_tts(server, aggregate_sentences=False)
    down, up = await run_test(tts, reply("Hel", "lo the", "re, how", " are you?"), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    inputs = [m for m in server.messages if "transcript" in m]
    assert [m["transcript"] for m in inputs] == ["Hel", "lo the", "re, how", " are you?", ""]
    assert not [m for m in inputs if "max_buffer_delay_ms" in m]
    # Cartesia joins the inputs as they are: whole words, not "Hel lo the re,".
    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert words == ["Hello", "there,", "how", "are", "you?"]


@pytest.mark.parametrize(
    ("kwargs", "streamed"),
    [
        ({"text_aggregation_mode": TextAggregationMode.TOKEN}, True),
        ({"text_aggregation_mode": "token"}, True),
        ({"text_aggregation_mode": TextAggregationMode.SENTENCE}, False),
        ({"text_aggregation_mode": "sentence", "aggregate_sentences": False}, False),
        ({}, False),
    ],
)
async def test_pipecat_s_text_aggregation_mode_picks_tokens_or_sentences(
    server: FakeCartesiaServer, kwargs: dict[str, object], streamed: bool
) -> None:
    # Pipecat 1.14's TTSService argument; it wins over the older aggregate_sentences.
    tts = make_tts(server, **kwargs)
    _, up = await run_test(tts, reply("Hel", "lo there. How", " are you?"), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    sent = [m["transcript"] for m in server.messages if m.get("transcript")]
    if streamed:
        assert sent == ["Hel", "lo there. How", " are you?"]
    else:
        assert [t.strip() for t in sent] == ["Hello there.", "How are you?"]


def test_an_unknown_text_aggregation_mode_is_refused(server: FakeCartesiaServer) -> None:
    with pytest.raises(ValueError, match="paragraph"):
        make_tts(server, text_aggregation_mode="paragraph")


async def test_a_whitespace_chunk_between_tokens_keeps_the_words_apart(
    server: FakeCartesiaServer,
) -> None:
    tts = make_tts(server, text_aggregation_mode="token")
    _, up = await run_test(tts, reply("Hello", " ", "there.", "\n\n", "Bye."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    sent = [m["transcript"] for m in server.messages if m.get("transcript")]
    assert sent == ["Hello", " there.", "\n\nBye."]
    assert "".join(sent) == "Hello there.\n\nBye."


async def test_generation_config_and_pronunciation_dictionary_reach_every_request(
    server: FakeCartesiaServer,
) -> None:
    from callpipe.frames.frames import TTSUpdateSettingsFrame
    from callpipe.services.cartesia.tts import GenerationConfig

    settings = CartesiaTTSService.Settings(
        model="sonic-3",
        generation_config=GenerationConfig(speed=1.1, emotion="content"),
        pronunciation_dict_id="dict-1",
    )
    update = CartesiaTTSService.Settings(
        generation_config=GenerationConfig(volume=1.5), pronunciation_dict_id="dict-2"
    )
    frames = [*reply("One."), TTSUpdateSettingsFrame(delta=update), *reply("Two.")]
    _, up = await run_test(make_tts(server, settings=settings), frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    inputs = [m for m in server.messages if "transcript" in m]
    one = [m for m in inputs if m["context_id"] == inputs[0]["context_id"]]
    two = [m for m in inputs if m["context_id"] != inputs[0]["context_id"]]
    # Every input of a context carries them, the closing empty one too.
    assert [m["generation_config"] for m in one] == [{"speed": 1.1, "emotion": "content"}] * 2
    assert [m["pronunciation_dict_id"] for m in one] == ["dict-1"] * 2
    assert [m["generation_config"] for m in two] == [{"volume": 1.5}] * 2
    assert [m["pronunciation_dict_id"] for m in two] == ["dict-2"] * 2


async def test_generation_config_from_params_and_a_dict_update_win_over_speed(
    server: FakeCartesiaServer,
) -> None:
    from callpipe.frames.frames import TTSUpdateSettingsFrame
    from callpipe.services.cartesia.tts import GenerationConfig

    params = CartesiaTTSService.InputParams(
        speed="fast",
        volume=0.8,
        generation_config=GenerationConfig(speed=0.9),
        pronunciation_dict_id="dict-p",
    )
    tts = make_tts(server, model="sonic-3", params=params)
    assert tts.settings.pronunciation_dict_id == "dict-p"  # type: ignore[attr-defined]
    frames = [
        *reply("One."),
        # Pipecat's older dict form: the keys map onto the same settings.
        TTSUpdateSettingsFrame(
            settings={"generation_config": {"emotion": "calm"}, "pronunciation_dict_id": None}
        ),
        *reply("Two."),
    ]
    await run_test(tts, frames, params=PARAMS)
    said = [m for m in server.messages if m.get("transcript")]
    assert said[0]["generation_config"] == {"speed": 0.9, "volume": 0.8}
    assert said[0]["pronunciation_dict_id"] == "dict-p"
    assert said[1]["generation_config"] == {"speed": 1.2, "volume": 0.8, "emotion": "calm"}
    assert "pronunciation_dict_id" not in said[1]


async def test_a_regional_language_is_sent_as_cartesia_s_code(
    server: FakeCartesiaServer,
) -> None:
    from callpipe.frames.frames import TTSUpdateSettingsFrame
    from callpipe.transcriptions.language import Language

    settings = CartesiaTTSService.Settings(model="sonic-3", language=Language("es-MX"))
    tts = make_tts(server, settings=settings)
    assert tts.settings.language == Language("es-MX")  # the setting keeps the tag as given
    frames = [
        *reply("Hola."),
        TTSUpdateSettingsFrame(delta=CartesiaTTSService.Settings(language=Language("nb-NO"))),
        *reply("Hei."),
        TTSUpdateSettingsFrame(settings={"language": "fil-PH"}),
        *reply("Kumusta."),
    ]
    _, up = await run_test(tts, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    said = [m for m in server.messages if m.get("transcript")]
    # Cartesia documents ISO 639-1 codes only, and calls Norwegian "no" and Filipino "tl".
    assert [m["language"] for m in said] == ["es", "no", "tl"]
    assert all(type(m["language"]) is str for m in said)


async def test_params_language_is_mapped_and_none_sends_no_language(
    server: FakeCartesiaServer,
) -> None:
    from callpipe.transcriptions.language import Language

    params = CartesiaTTSService.InputParams(language=Language("pt-BR"))
    await run_test(make_tts(server, params=params), reply("Olá."), params=PARAMS)
    await run_test(
        make_tts(server, params=CartesiaTTSService.InputParams(language=None)),
        reply("Hello."),
        params=PARAMS,
    )
    said = [m for m in server.messages if m.get("transcript")]
    assert said[0]["language"] == "pt"
    assert "language" not in said[1]


def test_an_unknown_language_warns_once_and_sends_its_base(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from callpipe.services.cartesia.tts import language_to_cartesia_language
    from callpipe.transcriptions.language import Language

    with caplog.at_level("WARNING"):
        tts = CartesiaTTSService(
            api_key="test-key",
            voice_id="voice-1",
            settings=CartesiaTTSService.Settings(language=Language("sw-KE")),
        )
        request = tts._request("ctx", "Habari.", more=True)
    assert request["language"] == "sw"
    assert len([r for r in caplog.records if "sw-KE" in r.getMessage()]) == 1
    assert language_to_cartesia_language(Language("zh-TW")) == "zh"
    assert language_to_cartesia_language("cmn-CN") == "zh"


async def test_the_default_model_is_sonic_3_with_its_generation_config(
    server: FakeCartesiaServer,
) -> None:
    tts = make_tts(server, params=CartesiaTTSService.InputParams(speed="fast"))
    assert tts.model_name == "sonic-3"
    await run_test(tts, reply("Hello there."), params=PARAMS)
    said = [m for m in server.messages if m.get("transcript")]
    assert said and all(m["model_id"] == "sonic-3" for m in said)
    # sonic-3 takes speed in generation_config, not in sonic-2's experimental controls.
    assert said[0]["generation_config"] == {"speed": 1.2}
    assert "__experimental_controls" not in said[0].get("voice", {})


async def test_speech_with_no_socket_to_go_to_is_one_error_and_a_closed_reply(
    server: FakeCartesiaServer,
) -> None:
    connected = asyncio.Event()

    class Service(CartesiaTTSService):
        async def start(self, frame: StartFrame) -> None:
            await super().start(frame)  # the service connects in the background at start
            connected.set()

    tts = Service(api_key="test-key", voice_id="voice-1", url=server.url)

    class CloseSocket(FrameProcessor):
        """Closes the TTS's socket just before a reply reaches it (as a lost connection would)."""

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, LLMFullResponseStartFrame):
                await connected.wait()
                assert tts._ws is not None
                await tts._ws.close()
            await self.push_frame(frame, direction)

    down, up = await run_test(Pipeline([CloseSocket(), tts]), reply("Hello there."), params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert [e.error for e in errors] == [f"{tts}: not connected; dropping speech"]
    assert not errors[0].fatal
    assert not [f for f in down if isinstance(f, TTSAudioRawFrame | TTSTextFrame)]
    assert not [m for m in server.messages if "transcript" in m]  # nothing reached Cartesia
    assert isinstance(down[-2], LLMFullResponseEndFrame)
