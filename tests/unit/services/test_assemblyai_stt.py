"""AssemblyAISTTService against FakeAssemblyAIServer (Universal-Streaming v3)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    EndFrame,
    ErrorFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    STTMetadataFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMUserAggregator
from callpipe.services.assemblyai.models import AssemblyAIConnectionParams
from callpipe.services.assemblyai.stt import AssemblyAISTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.assemblyai import FakeAssemblyAIServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies

from .helpers import PHONE as PARAMS
from .helpers import caller_audio, of, until

RATE = 8000
Settings = AssemblyAISTTService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeAssemblyAIServer]:
    async with FakeAssemblyAIServer() as fake:
        yield fake


def make_stt(server: FakeAssemblyAIServer, **kwargs: Any) -> AssemblyAISTTService:
    return AssemblyAISTTService(api_key="test-key", api_endpoint_base_url=server.url, **kwargs)


def connected(server: FakeAssemblyAIServer) -> SleepFrame:
    """Wait for the session to begin (audio before it would wait in the service's queue)."""
    return until(lambda: any(m["type"] == "Begin" for m in server.sent))


async def test_a_turn_gives_interims_then_the_formatted_final(
    server: FakeAssemblyAIServer,
) -> None:
    """Universal-Streaming: partials, then the plain end of turn (still interim), then the
    formatted one, which is the final transcript."""
    server.transcripts.append("Book a table for two, please.")
    stt = make_stt(server, settings=Settings(model="universal-streaming-english"))
    ends: list[str] = []
    stt.add_event_handler("on_end_of_turn", lambda s, t: ends.append(t))
    frames = [
        *caller_audio(1.2, loud=True),
        *caller_audio(1.4, loud=False),
        until(lambda: len(server.turns(final=True)) == 2),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    interims = [f.text for f in of(down, InterimTranscriptionFrame)]
    assert interims[0] == "book" and "book a table for two please" in interims
    finals = of(down, TranscriptionFrame)
    assert [f.text for f in finals] == ["Book a table for two, please."]
    assert finals[0].result["turn_is_formatted"] is True and finals[0].language == "en"
    assert not finals[0].finalized  # AssemblyAI ended the turn on silence, not on request
    assert ends == ["Book a table for two, please."]
    assert not of(up, ErrorFrame)
    # Pipecat's turn mode: AssemblyAI ends turns quickly, callpipe decides.
    query = server.queries[0]
    assert query["speech_model"] == "universal-streaming-english"
    assert query["encoding"] == "pcm_mulaw" and query["sample_rate"] == "8000"
    assert query["end_of_turn_confidence_threshold"] == "1.0"
    assert query["min_turn_silence"] == "160" and query["format_turns"] == "true"
    assert server.headers[0]["Authorization"] == "test-key"


async def test_vad_stop_forces_the_endpoint_and_the_final_precedes_the_llm(
    server: FakeAssemblyAIServer,
) -> None:
    """No silence reaches AssemblyAI: only the ForceEndpoint sent at the VAD stop can end the
    turn, and its final transcript is in the context the LLM gets."""
    server.transcripts.append("I'd like to cancel my order.")
    context = LLMContext()
    user = LLMUserAggregator(context)
    stt = make_stt(server)
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),  # the transport's VAD
        *caller_audio(0.9, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: server.control("ForceEndpoint") != []),
        SleepFrame(0.3),
    ]
    down, up = await run_test(Pipeline([stt, user]), frames, params=PARAMS)
    assert len(server.control("ForceEndpoint")) == 1
    said = [m["content"] for m in context.messages if m["role"] == "user"]  # type: ignore[index]
    assert said == ["I'd like to cancel my order."]
    kinds = [
        type(f).__name__ for f in down if isinstance(f, LLMContextFrame | UserStoppedSpeakingFrame)
    ]
    assert kinds[-1] == "LLMContextFrame"
    assert not of(up, ErrorFrame)
    # The queued audio went out before ForceEndpoint, every message 50 ms or more (padded).
    assert min(server.chunk_secs) >= 0.05
    assert len(server.audio) >= int(0.9 * RATE)


async def test_force_endpoint_final_is_marked_finalized(server: FakeAssemblyAIServer) -> None:
    server.transcripts.append("Yes.")
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(0.5, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: server.turns(final=True) != []),
        SleepFrame(0.1),
    ]
    down, _ = await run_test(make_stt(server), frames, params=PARAMS)
    finals = of(down, TranscriptionFrame)
    assert [(f.text, f.finalized) for f in finals] == [("Yes.", True)]


async def test_terminate_at_end_returns_the_last_words_before_the_end_frame(
    server: FakeAssemblyAIServer,
) -> None:
    """The call ends mid-sentence: Terminate makes AssemblyAI close the turn it holds."""
    server.transcripts.append("And one more thing.")
    frames = [connected(server), *caller_audio(0.62, loud=True)]  # the last 20 ms: padded
    down, _ = await run_test(make_stt(server), frames, params=PARAMS)
    assert [m["type"] for m in server.received] == ["Terminate"]
    assert server.sent[-1]["type"] == "Termination"
    kinds = [type(f).__name__ for f in down if isinstance(f, TranscriptionFrame | EndFrame)]
    assert kinds == ["TranscriptionFrame", "EndFrame"]
    assert of(down, TranscriptionFrame)[0].text == "And one more thing."
    # Every bit of audio was sent, the last piece padded to AssemblyAI's 50 ms minimum.
    assert min(server.chunk_secs) >= 0.05
    assert len(server.audio) >= int(0.62 * RATE)


async def test_a_rejected_key_is_fatal(server: FakeAssemblyAIServer) -> None:
    stt = AssemblyAISTTService(api_key="wrong", api_endpoint_base_url=server.url)
    _, up = await run_test(stt, [SleepFrame(10)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and errors[0].fatal
    assert "ASSEMBLYAI_API_KEY" in errors[0].error and "Unauthorized" in errors[0].error


async def test_an_http_refusal_of_the_key_is_fatal_too(server: FakeAssemblyAIServer) -> None:
    server._server.fail_handshakes = [401]
    _, up = await run_test(make_stt(server), [SleepFrame(0.2)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert errors and errors[0].fatal and "ASSEMBLYAI_API_KEY" in errors[0].error


async def test_a_provider_error_is_reported_once_and_not_fatal(
    server: FakeAssemblyAIServer,
) -> None:
    stt = make_stt(server, settings=Settings(model="no-such-model"))
    _, up = await run_test(stt, [SleepFrame(0.3)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and not errors[0].fatal and "3006" in errors[0].error


async def test_assemblyai_turn_mode_proposes_the_turns(server: FakeAssemblyAIServer) -> None:
    """vad_force_turn_endpoint=False: SpeechStarted and the end of the turn become proposals
    the external strategies (recommended in the metadata) turn into the user's turn."""
    server.transcripts.append("What time do you open?")
    context = LLMContext()
    user = LLMUserAggregator(context)
    stt = make_stt(server, vad_force_turn_endpoint=False, settings=Settings(min_turn_silence=200))
    frames = [
        BotStartedSpeakingFrame(),
        *caller_audio(0.8, loud=True),
        *caller_audio(0.4, loud=False),
        until(lambda: server.turns(final=True) != []),
        SleepFrame(0.3),
    ]
    down, _ = await run_test(Pipeline([stt, user]), frames, params=PARAMS)
    assert isinstance(user.user_turn_strategies, ExternalUserTurnStrategies)
    said = [m["content"] for m in context.messages if m["role"] == "user"]  # type: ignore[index]
    assert said == ["What time do you open?"]
    assert len(of(down, UserStartedSpeakingFrame)) == 1
    assert not server.control("ForceEndpoint")
    query = server.queries[0]
    assert query["min_turn_silence"] == "200" and "max_turn_silence" not in query


async def test_turn_mode_frames_and_metadata(server: FakeAssemblyAIServer) -> None:
    stt = make_stt(server, vad_force_turn_endpoint=False, should_interrupt=False)
    frames = [
        *caller_audio(0.6, loud=True),
        *caller_audio(0.6, loud=False),
        until(lambda: server.turns(final=True) != []),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    meta = of(down, STTMetadataFrame)[0]
    assert isinstance(meta.user_turn_strategies, ExternalUserTurnStrategies)
    assert meta.user_turn_strategies.enable_interruptions is False
    kinds = [
        type(f).__name__
        for f in down
        if isinstance(
            f,
            ProposedUserStartedSpeakingFrame
            | TranscriptionFrame
            | ProposedUserStoppedSpeakingFrame,
        )
    ]
    assert kinds == [
        "ProposedUserStartedSpeakingFrame",
        "TranscriptionFrame",
        "ProposedUserStoppedSpeakingFrame",
    ]
    assert of(down, TranscriptionFrame)[0].finalized
    assert len(of(up, ProposedUserStoppedSpeakingFrame)) == 1


async def test_default_mode_recommends_no_strategies_and_u3_silences(
    server: FakeAssemblyAIServer,
) -> None:
    down, _ = await run_test(make_stt(server), [SleepFrame(0.1)], params=PARAMS)
    meta = of(down, STTMetadataFrame)[0]
    assert meta.user_turn_strategies is None and meta.ttfs_p99_latency == 0.42
    query = server.queries[0]
    assert query["speech_model"] == "universal-3-6-pro"
    assert query["min_turn_silence"] == "100" and query["max_turn_silence"] == "100"
    assert query["continuous_partials"] == "true"
    assert "formatted_finals" not in query and "end_of_turn_confidence_threshold" not in query


async def test_mulaw_sends_the_phone_lines_bytes_and_pcm_on_request(
    server: FakeAssemblyAIServer,
) -> None:
    pcm = tone_pcm(0.4, RATE)
    frames = [InputAudioRawFrame(pcm[i : i + 320], RATE) for i in range(0, len(pcm), 320)]
    await run_test(make_stt(server), [*frames, SleepFrame(0.1)], params=PARAMS)
    assert bytes(server.audio) == pcm_to_ulaw(pcm)
    server.audio.clear()
    await run_test(
        make_stt(server, encoding="pcm_s16le"), [*frames, SleepFrame(0.1)], params=PARAMS
    )
    assert server.queries[-1]["encoding"] == "pcm_s16le" and bytes(server.audio) == pcm


async def test_options_reach_the_query(server: FakeAssemblyAIServer) -> None:
    stt = make_stt(
        server,
        settings=Settings(
            keyterms_prompt=["Acme", "refund"],
            language_codes=[Language.ES_MX, Language.EN, "es"],
            agent_context="How can I help?",
            speaker_labels=True,
            language_detection=True,
            mode="min_latency",
        ),
    )
    await run_test(stt, [SleepFrame(0.1)], params=PARAMS)
    query = server.queries[0]
    assert json.loads(query["keyterms_prompt"]) == ["Acme", "refund"]
    assert json.loads(query["language_codes"]) == ["es", "en"]
    assert query["agent_context"] == "How can I help?" and query["mode"] == "min_latency"
    assert query["speaker_labels"] == "true" and query["language_detection"] == "true"


async def test_detected_language_and_speaker_format(server: FakeAssemblyAIServer) -> None:
    server.detected_language = ("es", 0.9)
    server.transcripts.append("Hola.")
    stt = make_stt(
        server,
        speaker_format="{speaker}: {text}",
        settings=Settings(language_detection=True, speaker_labels=True),
    )
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(0.4, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: server.turns(final=True) != []),
        SleepFrame(0.1),
    ]
    down, _ = await run_test(stt, frames, params=PARAMS)
    assert [(f.text, f.language) for f in of(down, TranscriptionFrame)] == [("A: Hola.", "es")]


async def test_settings_updates_configure_or_reopen(server: FakeAssemblyAIServer) -> None:
    stt = make_stt(server)
    frames = [
        until(lambda: server.connections == 1),
        STTUpdateSettingsFrame(delta=Settings(agent_context="Your order ships today.")),
        until(lambda: server.control("UpdateConfiguration") != []),
        STTUpdateSettingsFrame(delta=Settings(language_codes=[Language.FR])),
        until(lambda: len(server.control("UpdateConfiguration")) == 2),
        STTUpdateSettingsFrame(delta=Settings(language=Language.FR)),  # not in the query
        SleepFrame(0.1),
        STTUpdateSettingsFrame(delta=Settings(keyterms_prompt=["Acme"])),
        until(lambda: server.connections == 2),
        SleepFrame(0.1),
    ]
    _, up = await run_test(stt, frames, params=PARAMS)
    updates = server.control("UpdateConfiguration")
    assert updates[0] == {"type": "UpdateConfiguration", "agent_context": "Your order ships today."}
    assert updates[1] == {"type": "UpdateConfiguration", "language_codes": ["fr"]}
    assert server.connections == 2
    query = server.queries[1]
    assert json.loads(query["keyterms_prompt"]) == ["Acme"]
    assert query["agent_context"] == "Your order ships today."
    assert json.loads(query["language_codes"]) == ["fr"]
    # The old socket was terminated, not dropped.
    assert server.control("Terminate")
    assert not of(up, ErrorFrame)


def test_constructor_checks_and_older_spellings() -> None:
    with pytest.raises(ConfigurationError, match="U3 Pro"):
        AssemblyAISTTService(
            api_key="k",
            vad_force_turn_endpoint=False,
            settings=Settings(model="universal-streaming-english"),
        )
    with pytest.raises(ConfigurationError, match="prompt"):
        AssemblyAISTTService(
            api_key="k", settings=Settings(model="universal-streaming-english", prompt="x")
        )
    with pytest.raises(ConfigurationError, match="at most 10"):
        codes = [Language.EN, Language.ES, Language.FR, Language.DE, Language.IT, Language.PT]
        codes += [Language.NL, Language.JA, Language.KO, Language.ZH, Language.RU]
        AssemblyAISTTService(api_key="k", settings=Settings(language_codes=codes))
    with pytest.raises(ConfigurationError, match="encoding"):
        AssemblyAISTTService(api_key="k", encoding="opus")
    params = AssemblyAIConnectionParams(
        speech_model="universal-streaming-english",
        min_end_of_turn_silence_when_confident=300,
        keyterms_prompt=["x"],
        sample_rate=16000,
    )
    stt = AssemblyAISTTService(api_key="k", connection_params=params, language="es")
    s = stt.assemblyai_settings
    assert s.model == "universal-streaming-english" and s.keyterms_prompt == ["x"]
    assert stt.sample_rate == 16000 and s.language == "es"
    assert stt.socket_url().startswith("wss://streaming.assemblyai.com/v3/ws?sample_rate=16000")
