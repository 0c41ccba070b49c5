"""SonioxSTTService against FakeSonioxServer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    InterimTranscriptionFrame,
    STTMuteFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.soniox.stt import (
    SonioxContextGeneralItem,
    SonioxContextObject,
    SonioxInputParams,
    SonioxSTTService,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.soniox import FakeSonioxServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import assert_provider_turn, caller_audio, of, until

RATE = 8000
Settings = SonioxSTTService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeSonioxServer]:
    async with FakeSonioxServer() as fake:
        yield fake


def make_stt(server: FakeSonioxServer, **kwargs: Any) -> SonioxSTTService:
    return SonioxSTTService(api_key="test-key", url=server.url, **kwargs)


def configured(server: FakeSonioxServer, count: int = 1) -> SleepFrame:
    return until(lambda: len(server.configs) >= count)


async def test_turn_end_flushes_audio_then_finalizes(server: FakeSonioxServer) -> None:
    server.transcripts.append("I would like to book a table")
    frames = [
        configured(server),
        UserStartedSpeakingFrame(),
        *caller_audio(1.26, loud=True),  # 60 ms less than a batch (100 ms) wait in the queue
        UserStoppedSpeakingFrame(),
        until(lambda: "<fin>" in server.finals()),
        SleepFrame(0.05),
        CancelFrame(),  # not an EndFrame: the final must come from the turn's finalize
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    assert not of(up, ErrorFrame)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "I would like to book a table"
    assert final.finalized and final.language is None
    assert [t["text"] for t in final.result][:2] == ["I", " would"]
    interims = [f.text for f in of(down, InterimTranscriptionFrame)]
    assert interims and all(final.text.startswith(i) for i in interims)
    # Final tokens that came before <fin> are held, then pushed once with the rest.
    assert len(server.finals()) > len(final.result)
    # The whole turn (µ-law, one byte a sample) reached Soniox before ``finalize``.
    assert server.audio_at_finalize == [int(1.26 * RATE)]
    assert [json.loads(c) for c in server.controls] == [{"type": "finalize"}]
    assert server.configs[0] == {
        "model": "stt-rt-v5",
        "audio_format": "mulaw",
        "num_channels": 1,
        "sample_rate": 8000,
        "enable_endpoint_detection": False,
        "enable_speaker_diarization": False,
        "enable_language_identification": False,
    }
    assert server.headers[0]["authorization"] == "Bearer test-key"


async def test_end_of_call_pushes_last_words_before_end_frame(server: FakeSonioxServer) -> None:
    server.transcripts.append("goodbye then")
    frames = [configured(server), *caller_audio(0.6, loud=True)]
    down, _ = await run_test(make_stt(server), frames, params=PARAMS)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["goodbye then"]
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]
    assert server.controls == [""]  # the end of audio
    assert server.sent[-1]["finished"] is True
    assert len(server.audio) == int(0.6 * RATE)


async def test_wideband_sends_pcm_and_settings_reach_the_config(
    server: FakeSonioxServer,
) -> None:
    server.language = "es"
    settings = Settings(
        language_hints=[Language.ES_MX, Language.EN_US, Language.ES],
        language_hints_strict=True,
        context=SonioxContextObject(
            general=[SonioxContextGeneralItem(key="domain", value="dentist")], terms=["Zyrtec"]
        ),
        enable_language_identification=True,
        client_reference_id="call-7",
        max_endpoint_delay_ms=800,  # only with Soniox's endpoint detection: left out
    )
    stt = make_stt(server, settings=settings)
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
    frames = [configured(server), *caller_audio(0.6, loud=True, rate=16000)]
    down, _ = await run_test(stt, frames, params=params)
    config = server.configs[0]
    assert config["audio_format"] == "pcm_s16le" and config["sample_rate"] == 16000
    assert config["language_hints"] == ["es", "en"] and config["language_hints_strict"] is True
    assert config["context"] == {
        "general": [{"key": "domain", "value": "dentist"}],
        "terms": ["Zyrtec"],
    }
    assert config["client_reference_id"] == "call-7" and "max_endpoint_delay_ms" not in config
    assert len(server.audio) == int(0.6 * 16000) * 2
    [final] = of(down, TranscriptionFrame)
    assert final.language == "es"  # the language the tokens carry


async def test_soniox_endpoint_mode_proposes_the_turns(server: FakeSonioxServer) -> None:
    settings = Settings(max_endpoint_delay_ms=700, endpoint_sensitivity=0.5)
    stt = make_stt(server, vad_force_turn_endpoint=False, should_interrupt=False, settings=settings)
    frames = [
        configured(server),
        *caller_audio(0.6, loud=True),
        *caller_audio(0.7, loud=False),
        until(lambda: "<end>" in server.finals()),
        SleepFrame(0.05),
        UserStoppedSpeakingFrame(),  # the VAD does not finalize in this mode
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    meta = assert_provider_turn(down, up)
    assert meta.ttfs_p99_latency == 0.35
    config = server.configs[0]
    assert config["enable_endpoint_detection"] is True
    assert config["max_endpoint_delay_ms"] == 700 and config["endpoint_sensitivity"] == 0.5
    assert server.controls == [""]


async def test_a_rejected_key_is_fatal(server: FakeSonioxServer) -> None:
    stt = SonioxSTTService(api_key="wrong", url=server.url)
    _, up = await run_test(stt, [SleepFrame(10)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert errors and errors[0].fatal
    assert "SONIOX_API_KEY" in errors[0].error and "401" in errors[0].error
    assert server.connections == 1  # a refused session is not reopened


async def test_a_server_error_is_reported_and_the_session_reopened(
    server: FakeSonioxServer,
) -> None:
    server.transcripts.extend(["lost words", "after the restart"])
    stt = make_stt(server)
    frames = [
        configured(server),
        *caller_audio(0.4, loud=True),
        until(lambda: server.sent != []),
        SleepFrame(0.05),
    ]
    server_error = (503, "Cannot continue request (code N). Please restart the request.")

    def fail_next() -> bool:
        server.error_next = server_error
        return True

    frames += [
        until(fail_next),
        *caller_audio(0.2, loud=True),
        until(lambda: len(server.configs) == 2),
        *caller_audio(0.6, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and not errors[0].fatal and "503" in errors[0].error
    assert server.configs[1] == server.configs[0]  # configured again, first
    texts = [f.text for f in of(down, TranscriptionFrame)]
    assert texts[-1] == "after the restart"


async def test_settings_update_opens_a_socket_with_the_new_config(
    server: FakeSonioxServer,
) -> None:
    server.transcripts.extend(["first words", "deuxième"])
    stt = make_stt(server, settings=Settings(language_hints=[Language.EN]))
    frames = [
        configured(server),
        *caller_audio(0.4, loud=True),
        SleepFrame(0.2),
        STTUpdateSettingsFrame(delta=Settings(language=Language.FR)),
        until(lambda: server.connections == 2 and "" in server.controls),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert [c.get("language_hints") for c in server.configs] == [["en"], ["fr"]]
    assert [f.text for f in of(down, TranscriptionFrame)] == ["first words", "deuxième"]
    assert stt.settings.language == Language.FR


async def test_a_refused_new_config_keeps_the_old_socket_and_settings(
    server: FakeSonioxServer,
) -> None:
    server.transcripts.append("still here")
    stt = make_stt(server)
    frames = [
        configured(server),
        STTUpdateSettingsFrame(delta=Settings(model="no-such-model")),
        until(lambda: len(server.configs) == 2),
        SleepFrame(0.6),
        *caller_audio(0.6, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and not errors[0].fatal
    assert "could not open a socket" in errors[0].error and "[400]" in errors[0].error
    assert stt.settings.model == "stt-rt-v5"
    assert [f.text for f in of(down, TranscriptionFrame)] == ["still here"]
    assert server.configs[1]["model"] == "no-such-model" and server.connections == 2


async def test_muted_socket_is_kept_alive(server: FakeSonioxServer) -> None:
    stt = make_stt(server)
    stt.keepalive_secs = 0.05
    frames = [
        configured(server),
        STTMuteFrame(mute=True),
        *caller_audio(0.2, loud=True),
        until(lambda: '{"type": "keepalive"}' in server.controls),
    ]
    _, up = await run_test(stt, frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert server.audio == b""  # muted: nothing but keep-alives


def test_constructor_checks_and_the_older_spelling() -> None:
    with pytest.raises(ConfigurationError):
        SonioxSTTService(api_key="k", audio_format="opus")
    with pytest.raises(ConfigurationError):
        SonioxSTTService(api_key="k", num_channels=2)
    params = SonioxInputParams(model="stt-rt-v4", language_hints=["de"], context="A dental call")
    stt = SonioxSTTService(api_key="k", params=params, sample_rate=16000)
    config = stt.config_message()
    assert config["model"] == "stt-rt-v4" and config["language_hints"] == ["de"]
    assert config["context"] == {"text": "A dental call"}
    assert stt.socket_url() == "wss://stt-rt.soniox.com/transcribe-websocket"
    stt = SonioxSTTService(api_key="k", settings=Settings(language=Language.PT_BR))
    assert stt.settings.language_hints == [Language.PT_BR]
