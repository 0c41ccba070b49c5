"""DeepgramFluxSTTService against FakeDeepgramFluxServer: turns decided by Flux."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import (
    BotInterruptionFrame,
    BotStartedSpeakingFrame,
    EagerEndOfTurnCancelFrame,
    EagerTranscriptionFrame,
    ErrorFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    MetricsFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    STTMetadataFrame,
    STTMuteFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMUserAggregator
from callpipe.services.deepgram.flux.stt import DeepgramFluxSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.deepgram_flux import FakeDeepgramFluxServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies

from .helpers import PHONE as PARAMS
from .helpers import caller_audio, of

RATE = 8000
Settings = DeepgramFluxSTTService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeDeepgramFluxServer]:
    async with FakeDeepgramFluxServer() as fake:
        yield fake


def make_stt(server: FakeDeepgramFluxServer, **kwargs: Any) -> DeepgramFluxSTTService:
    return DeepgramFluxSTTService(api_key="test-key", url=server.url, **kwargs)


def until_event(server: FakeDeepgramFluxServer, event: str, count: int = 1) -> SleepFrame:
    return SleepFrame(5.0, until=lambda: len(server.events(event)) >= count)


async def test_a_whole_turn_interrupts_the_bot_and_runs_the_llm(
    server: FakeDeepgramFluxServer,
) -> None:
    """StartOfTurn → the recommended external strategy starts the turn and cuts the bot off;
    EndOfTurn → the final transcript, then the turn ends and the context goes to the LLM."""
    server.transcripts.append("I would like to book a table")
    context = LLMContext()
    user = LLMUserAggregator(context)
    stt = make_stt(server)
    frames = [
        BotStartedSpeakingFrame(),
        *caller_audio(1.2, loud=True),
        *caller_audio(0.5, loud=False),
        until_event(server, "EndOfTurn"),
        SleepFrame(0.2),
    ]
    down, up = await run_test(Pipeline([stt, user]), frames, params=PARAMS)
    assert isinstance(user.user_turn_strategies, ExternalUserTurnStrategies)
    said = [m["content"] for m in context.messages if m["role"] == "user"]  # type: ignore[index]
    assert said == ["I would like to book a table"]
    assert len(of(down, LLMContextFrame)) == 1
    assert len(of(down, UserStartedSpeakingFrame)) == 1
    assert len(of(up, BotInterruptionFrame)) == 1
    assert not of(up, ErrorFrame)
    # Proposals were decided by the aggregator, not passed on.
    assert not of(down, ProposedUserStartedSpeakingFrame)
    assert not of(down, ProposedUserStoppedSpeakingFrame)


async def test_frames_in_order_and_metadata(server: FakeDeepgramFluxServer) -> None:
    server.transcripts.append("one two three four")
    frames = [
        *caller_audio(1.2, loud=True),
        *caller_audio(0.5, loud=False),
        until_event(server, "EndOfTurn"),
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    meta = of(down, STTMetadataFrame)[0]
    assert meta.ttfs_p99_latency == 0.0
    assert isinstance(meta.user_turn_strategies, ExternalUserTurnStrategies)
    assert meta.user_turn_strategies.enable_interruptions is True
    kinds = [
        type(f).__name__
        for f in down
        if isinstance(
            f,
            ProposedUserStartedSpeakingFrame
            | InterimTranscriptionFrame
            | TranscriptionFrame
            | ProposedUserStoppedSpeakingFrame,
        )
    ]
    assert kinds[0] == "ProposedUserStartedSpeakingFrame"
    assert kinds[-2:] == ["TranscriptionFrame", "ProposedUserStoppedSpeakingFrame"]
    assert "InterimTranscriptionFrame" in kinds
    final = of(down, TranscriptionFrame)
    assert [f.text for f in final] == ["one two three four"]
    assert final[0].finalized and final[0].language == "en"
    assert final[0].result["event"] == "EndOfTurn"
    # Both proposals were broadcast: the start one reaches upstream processors too.
    assert len(of(up, ProposedUserStartedSpeakingFrame)) == 1
    assert len(of(up, ProposedUserStoppedSpeakingFrame)) == 1
    # 1.7 s of audio reached Flux as 80 ms linear16 messages, then CloseStream at the end.
    assert server.audio_bytes == int(1.7 * RATE) * 2
    assert server.close_streams == 1


async def test_should_interrupt_false_is_recommended(server: FakeDeepgramFluxServer) -> None:
    down, _ = await run_test(make_stt(server, should_interrupt=False), [], params=PARAMS)
    strategies = of(down, STTMetadataFrame)[0].user_turn_strategies
    assert strategies.enable_interruptions is False


async def test_query_is_built_from_the_settings(server: FakeDeepgramFluxServer) -> None:
    stt = make_stt(
        server,
        tag=["prod", "bot-7"],
        mip_opt_out=True,
        settings=Settings(
            eot_threshold=0.8,
            eot_timeout_ms=3000,
            keyterm=["Acme Corp", "refund"],
            numerals=True,
        ),
    )
    await run_test(stt, [SleepFrame(0.1)], params=PARAMS)
    query = server.query_lists[0]
    assert server.paths[0].startswith("/v2/listen?")
    assert query["model"] == ["flux-general-en"]
    assert query["encoding"] == ["linear16"] and query["sample_rate"] == ["8000"]
    assert query["eot_threshold"] == ["0.8"] and query["eot_timeout_ms"] == ["3000"]
    assert query["keyterm"] == ["Acme Corp", "refund"]
    assert query["tag"] == ["prod", "bot-7"]
    assert query["mip_opt_out"] == ["true"] and query["numerals"] == ["true"]
    assert "eager_eot_threshold" not in query and "language_hint" not in query


async def test_multilingual_hints_and_detected_language(server: FakeDeepgramFluxServer) -> None:
    server.detected_languages = ["es", "en"]
    server.transcripts.append("hola")
    stt = make_stt(
        server,
        settings=Settings(
            model="flux-general-multi", language_hints=[Language.ES, Language.EN_US, "es"]
        ),
    )
    frames = [
        *caller_audio(0.6, loud=True),
        *caller_audio(0.5, loud=False),
        until_event(server, "EndOfTurn"),
    ]
    down, _ = await run_test(stt, frames, params=PARAMS)
    assert server.query_lists[0]["language_hint"] == ["es", "en"]
    assert [(f.text, f.language) for f in of(down, TranscriptionFrame)] == [("hola", "es")]


async def test_mulaw_sends_the_phone_lines_bytes(server: FakeDeepgramFluxServer) -> None:
    pcm = tone_pcm(0.4, RATE)
    frames = [InputAudioRawFrame(pcm[i : i + 320], RATE) for i in range(0, len(pcm), 320)]
    await run_test(
        make_stt(server, flux_encoding="mulaw"), [*frames, SleepFrame(0.2)], params=PARAMS
    )
    assert server.queries[0]["encoding"] == "mulaw"
    assert bytes(server.audio) == pcm_to_ulaw(pcm)


async def test_eager_end_of_turn_is_pushed_and_withdrawn(server: FakeDeepgramFluxServer) -> None:
    server.transcripts.append("book a table for two")
    stt = make_stt(server, enable_eager_end_of_turn=True)
    events: list[str] = []
    stt.add_event_handler("on_eager_end_of_turn", lambda s, t: events.append(f"eager:{t}"))
    stt.add_event_handler("on_turn_resumed", lambda s: events.append("resumed"))
    stt.add_event_handler("on_end_of_turn", lambda s, t: events.append(f"end:{t}"))
    frames = [
        *caller_audio(0.6, loud=True),
        *caller_audio(0.2, loud=False),  # Flux predicts the end of the turn...
        *caller_audio(0.4, loud=True),  # ...but the caller goes on
        *caller_audio(0.5, loud=False),
        until_event(server, "EndOfTurn"),
    ]
    down, _ = await run_test(stt, frames, params=PARAMS)
    assert server.queries[0]["eager_eot_threshold"] == "0.5"
    assert server.events("EagerEndOfTurn") and server.events("TurnResumed")
    eager = of(down, EagerTranscriptionFrame)
    assert len(eager) == 2 and eager[-1].text == "book a table for two"
    assert len(of(down, EagerEndOfTurnCancelFrame)) == 1
    assert [f.text for f in of(down, TranscriptionFrame)] == ["book a table for two"]
    assert events == [
        "eager:book a table for two",
        "resumed",
        "eager:book a table for two",
        "end:book a table for two",
    ]


async def test_without_eager_end_of_turn_no_prediction_frames(
    server: FakeDeepgramFluxServer,
) -> None:
    stt = make_stt(server, settings=Settings(eager_eot_threshold=0.4))
    frames = [
        *caller_audio(0.6, loud=True),
        *caller_audio(0.5, loud=False),
        until_event(server, "EndOfTurn"),
    ]
    down, _ = await run_test(stt, frames, params=PARAMS)
    assert server.events("EagerEndOfTurn")  # Flux predicted, the bot did not take it up
    assert not of(down, EagerTranscriptionFrame)


async def test_min_confidence_drops_the_transcript_but_ends_the_turn(
    server: FakeDeepgramFluxServer,
) -> None:
    server.word_confidence = 0.4
    stt = make_stt(server, settings=Settings(min_confidence=0.5))
    frames = [
        *caller_audio(0.6, loud=True),
        *caller_audio(0.5, loud=False),
        until_event(server, "EndOfTurn"),
    ]
    down, _ = await run_test(stt, frames, params=PARAMS)
    assert not of(down, TranscriptionFrame)
    assert len(of(down, ProposedUserStoppedSpeakingFrame)) == 1


async def test_settings_updates_configure_or_reopen(server: FakeDeepgramFluxServer) -> None:
    stt = make_stt(server)
    server.configure_failures.append(("INVALID_CONFIGURE", "no such keyterm"))
    frames = [
        SleepFrame(5.0, until=lambda: server.connections == 1),
        STTUpdateSettingsFrame(delta=Settings(keyterm=["Acme"])),
        SleepFrame(5.0, until=lambda: len(server.received) == 1),
        STTUpdateSettingsFrame(delta=Settings(eot_threshold=0.9, numerals=True)),
        SleepFrame(5.0, until=lambda: len(server.received) == 2),
        STTUpdateSettingsFrame(delta=Settings(model="flux-general-multi")),
        SleepFrame(5.0, until=lambda: server.connections == 2),
        SleepFrame(0.1),
    ]
    _, up = await run_test(stt, frames, params=PARAMS)
    assert server.received[0] == {"type": "Configure", "keyterms": ["Acme"]}
    assert server.received[1] == {
        "type": "Configure",
        "thresholds": {"eot_threshold": 0.9},
        "numerals": True,
    }
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and "no such keyterm" in errors[0].error and not errors[0].fatal
    # The model is only in the URL: a new socket carrying everything set so far.
    query = parse_qs(urlsplit(server.paths[-1]).query)
    assert query["model"] == ["flux-general-multi"] and query["eot_threshold"] == ["0.9"]
    assert query["keyterm"] == ["Acme"]
    assert stt.flux_settings.model == "flux-general-multi"


async def test_a_refused_reopen_keeps_the_old_socket(server: FakeDeepgramFluxServer) -> None:
    stt = make_stt(server)
    frames = [
        SleepFrame(5.0, until=lambda: server.connections == 1),
        STTUpdateSettingsFrame(delta=Settings(model="nova-3")),  # not a Flux model
        SleepFrame(5.0, until=lambda: server.rejected == 1),
        SleepFrame(0.1),
        *caller_audio(0.6, loud=True),
        *caller_audio(0.5, loud=False),
        until_event(server, "EndOfTurn"),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and not errors[0].fatal and "previous ones" in errors[0].error
    assert stt.flux_settings.model == "flux-general-en"
    assert server.connections == 1 and [f.text for f in of(down, TranscriptionFrame)] == ["hello"]


async def test_rejected_key_is_fatal(server: FakeDeepgramFluxServer) -> None:
    stt = DeepgramFluxSTTService(api_key="wrong", url=server.url)
    _, up = await run_test(stt, [SleepFrame(10)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert errors and errors[0].fatal and "DEEPGRAM_API_KEY" in errors[0].error


async def test_a_drop_mid_turn_ends_the_turn_with_what_was_heard(
    server: FakeDeepgramFluxServer,
) -> None:
    server.transcripts.extend(["one two three four five", "again"])
    frames = [
        *caller_audio(0.9, loud=True),
        SleepFrame(5.0, until=lambda: _heard(server, "one two")),
        _Call(server.drop_on_next_audio),
        *caller_audio(0.2, loud=True),
        SleepFrame(5.0, until=lambda: server.connections == 2),
        *caller_audio(0.6, loud=True),
        *caller_audio(0.5, loud=False),
        until_event(server, "EndOfTurn"),
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    finals = of(down, TranscriptionFrame)
    assert finals[0].text.startswith("one two") and not finals[0].finalized
    assert finals[-1].text == "again" and finals[-1].finalized
    assert len(of(down, ProposedUserStoppedSpeakingFrame)) == 2
    assert not [e for e in of(up, ErrorFrame) if e.fatal]


async def test_a_reconnect_keeps_the_settings_changed_by_configure(
    server: FakeDeepgramFluxServer,
) -> None:
    frames = [
        SleepFrame(5.0, until=lambda: server.connections == 1),
        STTUpdateSettingsFrame(delta=Settings(eot_threshold=0.9, keyterm=["Acme"])),
        SleepFrame(5.0, until=lambda: len(server.received) == 1),
        _Call(server.drop_on_next_audio),
        *caller_audio(0.2, loud=False),
        SleepFrame(5.0, until=lambda: server.connections == 2),
    ]
    await run_test(make_stt(server), frames, params=PARAMS)
    assert "eot_threshold" not in server.queries[0]
    assert server.queries[1]["eot_threshold"] == "0.9"
    assert server.query_lists[1]["keyterm"] == ["Acme"]


async def test_no_ttfb_is_reported(server: FakeDeepgramFluxServer) -> None:
    """As in 1.14: Flux ends the turn itself, so a VAD stop (e.g. the transport's) starts no
    speech-end-to-transcript measurement."""
    params = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
    params.enable_metrics = True
    frames = [
        UserStartedSpeakingFrame(),
        *caller_audio(0.6, loud=True),
        UserStoppedSpeakingFrame(),
        *caller_audio(0.5, loud=False),
        until_event(server, "EndOfTurn"),
    ]
    down, up = await run_test(make_stt(server), frames, params=params)
    assert of(down, TranscriptionFrame)
    data = [d for f in [*down, *up] if isinstance(f, MetricsFrame) for d in f.data]
    assert not [d for d in data if isinstance(d, TTFBMetricsData)]


async def test_watchdog_sends_silence_when_audio_stops_mid_turn(
    server: FakeDeepgramFluxServer,
) -> None:
    stt = make_stt(server, watchdog_min_timeout=0.1)
    frames = [
        *caller_audio(0.6, loud=True),
        until_event(server, "StartOfTurn"),
        STTMuteFrame(mute=True),  # no more audio reaches Flux
        until_event(server, "EndOfTurn"),
    ]
    down, _ = await run_test(stt, frames, params=PARAMS)
    assert server.events("EndOfTurn")
    assert server.audio_bytes > int(0.6 * RATE) * 2  # the watchdog's silence
    assert [f.text for f in of(down, TranscriptionFrame)] == ["hello"]


async def test_quiet_call_sends_no_silence(server: FakeDeepgramFluxServer) -> None:
    stt = make_stt(server, watchdog_min_timeout=0.05)
    await run_test(stt, [SleepFrame(0.3)], params=PARAMS)
    assert server.audio_bytes == 0


async def test_url_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLPIPE_DEEPGRAM_URL", raising=False)
    monkeypatch.delenv("CALLPIPE_DEEPGRAM_FLUX_URL", raising=False)
    full = DeepgramFluxSTTService(api_key="k", url="wss://example.test/v2/listen")
    origin = DeepgramFluxSTTService(api_key="k", url="wss://example.test")
    assert full.socket_url().startswith("wss://example.test/v2/listen?model=flux-general-en")
    assert origin.socket_url().split("?")[0] == "wss://example.test/v2/listen"
    default = DeepgramFluxSTTService(api_key="k")
    assert default.socket_url().startswith("wss://api.deepgram.com/v2/listen?")
    with pytest.raises(ValueError, match="flux_encoding"):
        DeepgramFluxSTTService(api_key="k", flux_encoding="opus")
    # Without a url: Flux's own variable, then Deepgram's general one (an origin gets the path).
    monkeypatch.setenv("CALLPIPE_DEEPGRAM_URL", "ws://127.0.0.1:9/")
    general = DeepgramFluxSTTService(api_key="k")
    assert general.socket_url().split("?")[0] == "ws://127.0.0.1:9/v2/listen"
    monkeypatch.setenv("CALLPIPE_DEEPGRAM_FLUX_URL", "ws://127.0.0.1:8/flux/listen")
    specific = DeepgramFluxSTTService(api_key="k")
    assert specific.socket_url().split("?")[0] == "ws://127.0.0.1:8/flux/listen"
    explicit = DeepgramFluxSTTService(api_key="k", url="wss://example.test")
    assert explicit.socket_url().split("?")[0] == "wss://example.test/v2/listen"


def test_input_params_are_the_older_spelling() -> None:
    params = DeepgramFluxSTTService.InputParams(eot_threshold=0.75, keyterm=["x"], tag=["t"])
    stt = DeepgramFluxSTTService(api_key="k", params=params, model="flux-general-multi")
    assert stt.flux_settings.eot_threshold == 0.75 and stt.flux_settings.keyterm == ["x"]
    assert (
        stt.flux_settings.model == "flux-general-multi" and stt.model_name == "flux-general-multi"
    )
    assert "tag=t" in stt.socket_url()


# ---------------------------------------------------------------------- helpers


def _heard(server: FakeDeepgramFluxServer, text: str) -> bool:
    return any(m.get("event") == "Update" and text in m["transcript"] for m in server.sent)


class _Call(SleepFrame):
    """Run ``fn`` at this point of the frame script."""

    def __init__(self, fn: Any) -> None:
        super().__init__(0.0)
        self.fn = fn

    async def wait(self) -> None:
        self.fn()
