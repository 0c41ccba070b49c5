"""GladiaSTTService against FakeGladiaServer."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    InterimTranscriptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    STTMetadataFrame,
    STTMuteFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.gladia.config import GladiaInputParams, LanguageConfig, MessagesConfig
from callpipe.services.gladia.stt import GladiaSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.gladia import FakeGladiaServer
from callpipe.transcriptions.language import Language
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies

from .helpers import PHONE, WIDE, ConnectionEvents, caller_audio, of, until

Settings = GladiaSTTService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeGladiaServer]:
    async with FakeGladiaServer() as fake:
        yield fake


def make_stt(server: FakeGladiaServer, **kwargs: Any) -> GladiaSTTService:
    return GladiaSTTService(api_key="test-key", url=server.base_url, **kwargs)


def connected(server: FakeGladiaServer, count: int = 1) -> Any:
    return until(lambda: server.connections >= count)


def sent_types(server: FakeGladiaServer) -> list[str]:
    return [m["type"] for m in server.sent]


async def test_phone_call_sends_the_lines_ulaw_and_pushes_the_final(
    server: FakeGladiaServer,
) -> None:
    server.transcripts.append("I would like a table")
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(1.0, loud=True),
        UserStoppedSpeakingFrame(),
        *caller_audio(0.2, loud=False),
        until(lambda: "transcript" in sent_types(server)),
        CancelFrame(),
    ]
    down, up = await run_test(make_stt(server), frames, params=PHONE, send_end_frame=False)
    assert not of(up, ErrorFrame)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "I would like a table" and final.language == "en"
    assert final.result["type"] == "transcript" and final.result["data"]["is_final"]
    assert server.inits == [
        {
            "encoding": "wav/ulaw",
            "bit_depth": 8,
            "sample_rate": 8000,
            "channels": 1,
            "model": "solaria-1",
            "maximum_duration_without_endpointing": 5,
            "messages_config": {"receive_acknowledgments": False},
        }
    ]
    assert server.init_headers[0]["x-gladia-key"] == "test-key"
    assert server.init_queries == [{}]
    assert len(server.audio) == int(1.2 * 8000)  # one byte a sample: the line's µ-law
    assert "audio_chunk" not in sent_types(server)  # no per-chunk acknowledgments asked for


async def test_wideband_partials_become_interims(server: FakeGladiaServer) -> None:
    server.transcripts.append("one two three four five")
    stt = make_stt(
        server,
        region="us-west",
        settings=Settings(
            language=Language.FR_FR,
            endpointing=0.3,
            messages_config=MessagesConfig(receive_partial_transcripts=True),
        ),
    )
    frames = [
        connected(server),
        *caller_audio(1.5, loud=True, rate=16000),
        *caller_audio(0.4, loud=False, rate=16000),
        until(lambda: any(m["data"].get("is_final") for m in server.sent if "data" in m)),
        CancelFrame(),
    ]
    down, up = await run_test(stt, frames, params=WIDE, send_end_frame=False)
    assert not of(up, ErrorFrame)
    interims = [f.text for f in of(down, InterimTranscriptionFrame)]
    assert interims and all("one two three four five".startswith(i) for i in interims)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "one two three four five" and final.language == "fr"
    [body] = server.inits
    assert (body["encoding"], body["bit_depth"], body["sample_rate"]) == ("wav/pcm", 16, 16000)
    assert body["language_config"] == {"languages": ["fr"]}
    assert body["endpointing"] == 0.3
    assert body["messages_config"] == {
        "receive_acknowledgments": False,
        "receive_partial_transcripts": True,
    }
    assert server.init_queries == [{"region": "us-west"}]
    assert len(server.audio) == int(1.9 * 16000) * 2


async def test_end_of_call_stops_recording_and_pushes_the_last_words(
    server: FakeGladiaServer,
) -> None:
    server.transcripts.append("goodbye then")
    frames = [connected(server), *caller_audio(0.6, loud=True)]  # no quiet: still open
    down, up = await run_test(make_stt(server), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert server.controls == [{"type": "stop_recording"}]
    assert [f.text for f in of(down, TranscriptionFrame)] == ["goodbye then"]
    assert isinstance(down[-1], EndFrame)
    assert down.index(of(down, TranscriptionFrame)[0]) < len(down) - 1
    assert len(server.audio) == int(0.6 * 8000)  # all of it went out before stop_recording


async def test_a_rejected_key_is_fatal_and_names_the_variable() -> None:
    async with FakeGladiaServer(api_key="other-key") as fake:
        frames = [until(lambda: bool(fake.init_headers))]
        _, up = await run_test(make_stt(fake), frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert error.fatal and "GLADIA_API_KEY" in error.error and "401" in error.error
    assert fake.connections == 0


async def test_a_refused_configuration_is_reported_not_fatal(server: FakeGladiaServer) -> None:
    stt = make_stt(server, settings=Settings(endpointing=60.0))  # Gladia allows up to 10 s
    _, up = await run_test(stt, [until(lambda: bool(server.init_headers))], params=PHONE)
    [error] = of(up, ErrorFrame)
    assert not error.fatal and "400" in error.error and "endpointing" in error.error
    assert server.connections == 0


async def test_a_busy_session_endpoint_is_tried_once_more(server: FakeGladiaServer) -> None:
    server.fail_inits.append(503)
    _, up = await run_test(make_stt(server), [connected(server)], params=PHONE)
    assert not of(up, ErrorFrame)
    assert len(server.init_headers) == 2 and len(server.inits) == 1


async def test_gladia_vad_proposes_the_turns(server: FakeGladiaServer) -> None:
    stt = make_stt(server, settings=Settings(enable_vad=True), should_interrupt=False)
    frames = [
        connected(server),
        *caller_audio(0.6, loud=True),
        *caller_audio(0.2, loud=False),
        until(lambda: "transcript" in sent_types(server)),
        CancelFrame(),
    ]
    down, up = await run_test(stt, frames, params=PHONE, send_end_frame=False)
    [meta] = of(down, STTMetadataFrame)
    assert isinstance(meta.user_turn_strategies, ExternalUserTurnStrategies)
    assert meta.user_turn_strategies.enable_interruptions is False
    # In Gladia's order: speech_end comes before the utterance's final transcript.
    turn = ProposedUserStartedSpeakingFrame | TranscriptionFrame | ProposedUserStoppedSpeakingFrame
    assert [type(f) for f in down if isinstance(f, turn)] == [
        ProposedUserStartedSpeakingFrame,
        ProposedUserStoppedSpeakingFrame,
        TranscriptionFrame,
    ]
    assert len(of(up, ProposedUserStoppedSpeakingFrame)) == 1


async def test_speech_events_are_ignored_without_enable_vad(server: FakeGladiaServer) -> None:
    frames = [
        connected(server),
        *caller_audio(0.6, loud=True),
        *caller_audio(0.2, loud=False),
        until(lambda: "transcript" in sent_types(server)),
        CancelFrame(),
    ]
    down, _ = await run_test(make_stt(server), frames, params=PHONE, send_end_frame=False)
    assert "speech_start" in sent_types(server) and "speech_end" in sent_types(server)
    assert not of(down, ProposedUserStartedSpeakingFrame)
    assert not of(down, ProposedUserStoppedSpeakingFrame)
    [meta] = of(down, STTMetadataFrame)
    assert meta.user_turn_strategies is None


async def test_a_settings_change_starts_a_new_session(server: FakeGladiaServer) -> None:
    server.transcripts.extend(["first", "second"])
    update = Settings(language_config=LanguageConfig(languages=["de"]))
    frames = [
        connected(server),
        *caller_audio(0.4, loud=True),
        STTUpdateSettingsFrame(delta=update),
        connected(server, 2),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(make_stt(server), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [b.get("language_config") for b in server.inits] == [None, {"languages": ["de"]}]
    assert server.controls == [{"type": "stop_recording"}] * 2  # the old one, then at the end
    assert [(f.text, f.language) for f in of(down, TranscriptionFrame)] == [
        ("first", "en"),
        ("second", "de"),
    ]


async def test_a_dropped_socket_reconnects_to_the_same_session(server: FakeGladiaServer) -> None:
    frames = [
        connected(server),
        *caller_audio(0.2, loud=False),
        until(lambda: len(server.audio) > 0),
    ]
    frames.append(until(lambda: server.drop_on_next_audio() is None))  # arm the drop
    frames += [*caller_audio(0.3, loud=False), connected(server, 2)]
    _, up = await run_test(make_stt(server), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert len(server.inits) == 1 and server.connections == 2
    assert len({p.split("?", 1)[1] for p in server.paths}) == 1  # the same token


async def test_a_muted_stt_keeps_the_session_alive(server: FakeGladiaServer) -> None:
    stt = make_stt(server)
    stt.keepalive_secs = 0.05
    frames = [
        connected(server),
        *caller_audio(0.2, loud=False),
        until(lambda: len(server.audio) > 0),
        STTMuteFrame(mute=True),
        until(lambda: server.json_chunks >= 2),
    ]
    _, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert server.json_chunks >= 2
    assert len(server.audio) == int(0.2 * 8000)  # the keep-alives carry no audio


async def test_a_refused_audio_chunk_is_reported(server: FakeGladiaServer) -> None:
    server.error_next = "Invalid audio chunk"
    frames = [connected(server), *caller_audio(0.2, loud=False)]
    _, up = await run_test(make_stt(server), frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert not error.fatal and "Invalid audio chunk" in error.error


def test_deprecated_params_and_checks() -> None:
    stt = GladiaSTTService(
        api_key="k",
        params=GladiaInputParams(
            encoding="wav/pcm",
            endpointing=0.2,
            language_config=LanguageConfig(languages=["es"], code_switching=True),
        ),
    )
    stt._init_sample_rate = 8000
    body = stt.init_request()
    assert (body["encoding"], body["bit_depth"]) == ("wav/pcm", 16)
    assert body["language_config"] == {"languages": ["es"], "code_switching": True}
    assert body["endpointing"] == 0.2
    with pytest.raises(ConfigurationError):
        GladiaSTTService(api_key="k", encoding="wav/flac")
    with pytest.raises(ConfigurationError):
        GladiaSTTService(api_key="k", encoding="wav/pcm", bit_depth=8)
    with pytest.raises(ConfigurationError):
        GladiaSTTService(api_key="k", channels=2)


# ---------------------------------------------------------------------- connection events


async def test_a_rejected_session_request_is_a_connection_error() -> None:
    async with FakeGladiaServer(api_key="other-key") as fake:
        stt = make_stt(fake)
        events = ConnectionEvents(stt)
        _, up = await run_test(stt, [until(lambda: bool(events.seen))], params=PHONE)
    [error] = of(up, ErrorFrame)
    assert error.fatal
    assert events.names() == ["on_connection_error"]  # never connected: no disconnection
    assert events.errors() == [error.error] and "401" in error.error
    assert fake.connections == 0


async def test_a_refused_session_configuration_is_a_connection_error(
    server: FakeGladiaServer,
) -> None:
    stt = make_stt(server, settings=Settings(endpointing=60.0))
    events = ConnectionEvents(stt)
    _, up = await run_test(stt, [until(lambda: bool(events.seen))], params=PHONE)
    [error] = of(up, ErrorFrame)
    assert not error.fatal
    assert events.names() == ["on_connection_error"]
    [text] = events.errors()
    assert "Gladia refused the session (HTTP 400" in text and text in error.error


async def test_an_unreachable_session_endpoint_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stt = GladiaSTTService(api_key="test-key", url=f"http://127.0.0.1:{port}")
    events = ConnectionEvents(stt)
    _, up = await run_test(stt, [until(lambda: bool(events.seen))], params=PHONE)
    [error] = of(up, ErrorFrame)
    assert events.names() == ["on_connection_error"]
    [text] = events.errors()
    assert "the session request failed: ConnectError" in text and text in error.error


async def test_connected_for_the_call_and_a_new_session_is_no_new_connection(
    server: FakeGladiaServer,
) -> None:
    server.transcripts.extend(["first", "second"])
    stt = make_stt(server)
    events = ConnectionEvents(stt)
    update = Settings(language_config=LanguageConfig(languages=["de"]))
    frames = [
        connected(server),
        *caller_audio(0.4, loud=True),
        STTUpdateSettingsFrame(delta=update),
        connected(server, 2),
        *caller_audio(0.4, loud=True),
    ]
    _, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert len(server.inits) == 2
    assert events.seen == [("on_connected", ()), ("on_disconnected", ())]


async def test_a_refused_new_session_is_a_connection_error_and_the_old_one_stays(
    server: FakeGladiaServer,
) -> None:
    frames = [
        connected(server),
        until(lambda: events.names() == ["on_connected"]),
        STTUpdateSettingsFrame(delta=Settings(endpointing=60.0)),  # Gladia allows up to 10 s
        until(lambda: bool(events.errors())),
        *caller_audio(0.2, loud=False),
    ]
    stt = make_stt(server)
    events = ConnectionEvents(stt)
    _, up = await run_test(stt, frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert "previous ones" in error.error
    assert events.names() == ["on_connected", "on_connection_error", "on_disconnected"]
    assert "Gladia refused the session (HTTP 400" in events.errors()[0]
    assert server.connections == 1


async def test_a_dropped_socket_is_a_disconnection_then_a_connection(
    server: FakeGladiaServer,
) -> None:
    frames = [
        connected(server),
        *caller_audio(0.2, loud=False),
        until(lambda: len(server.audio) > 0),
        until(lambda: server.drop_on_next_audio() is None),
        *caller_audio(0.3, loud=False),
        connected(server, 2),
        until(lambda: len(events.seen) >= 3),
    ]
    stt = make_stt(server)
    events = ConnectionEvents(stt)
    _, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert len(server.inits) == 1  # the same session: no new request
    assert events.names() == ["on_connected", "on_disconnected"] * 2
