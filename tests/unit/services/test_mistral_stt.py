"""MistralSTTService against FakeMistralRealtimeServer: the session, the turn's flush, the end of
the call, errors and settings at runtime."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.mistral.stt import MistralSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.mistral import FakeMistralRealtimeServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import caller_audio, of, until

RATE = 8000
Settings = MistralSTTService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeMistralRealtimeServer]:
    async with FakeMistralRealtimeServer() as fake:
        yield fake


def make_stt(server: FakeMistralRealtimeServer, **kwargs: Any) -> MistralSTTService:
    return MistralSTTService(api_key="test-key", base_url=server.url, **kwargs)


def configured(server: FakeMistralRealtimeServer, count: int = 1) -> SleepFrame:
    return until(lambda: len([m for m in server.sent if m["type"] == "session.updated"]) >= count)


def kinds(server: FakeMistralRealtimeServer) -> list[str]:
    """The client's message types, runs of audio shown once."""
    out: list[str] = []
    for message in server.messages:
        if not out or out[-1] != message["type"] or message["type"] != "input_audio.append":
            out.append(message["type"])
    return out


async def test_turn_end_sends_the_audio_then_a_flush(server: FakeMistralRealtimeServer) -> None:
    server.transcripts.append("I would like to book a table")
    frames = [
        configured(server),
        UserStartedSpeakingFrame(),
        *caller_audio(1.26, loud=True),  # 60 ms less than a batch (100 ms) wait in the queue
        UserStoppedSpeakingFrame(),
        until(lambda: server.sent[-1]["type"] == "transcription.done"),
        SleepFrame(0.05),
        CancelFrame(),  # not an EndFrame: the final must come from the turn's flush
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    assert not of(up, ErrorFrame)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "I would like to book a table"
    assert final.finalized and final.language == "en"  # from transcription.language
    assert final.result["type"] == "transcription.done"
    interims = [f.text for f in of(down, InterimTranscriptionFrame)]
    assert len(interims) > 1 and all(final.text.startswith(i) for i in interims)
    assert kinds(server) == ["session.update", "input_audio.append", "input_audio.flush"]
    assert server.messages[0] == {
        "type": "session.update",
        "session": {"audio_format": {"encoding": "pcm_mulaw", "sample_rate": 8000}},
    }
    # The whole turn went out as µ-law (one byte a sample), in batches of 100 ms.
    appends = [m["audio"] for m in server.messages if m["type"] == "input_audio.append"]
    assert [len(base64.b64decode(a)) for a in appends][:3] == [800, 800, 800]
    assert len(server.audio) == int(1.26 * RATE) * 2
    assert server.queries == [{"model": "voxtral-mini-transcribe-realtime-2602"}]
    assert server.headers[0]["authorization"] == "Bearer test-key"


async def test_end_of_call_pushes_last_words_before_end_frame(
    server: FakeMistralRealtimeServer,
) -> None:
    server.transcripts.append("goodbye then")
    frames = [configured(server), *caller_audio(0.6, loud=True)]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["goodbye then"]
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]
    assert kinds(server) == ["session.update", "input_audio.append", "input_audio.end"]


async def test_wideband_sends_pcm_and_the_session_options(
    server: FakeMistralRealtimeServer,
) -> None:
    server.transcripts.append("bonjour")
    stt = make_stt(
        server, target_streaming_delay_ms=480, settings=Settings(language=Language.FR_CA)
    )
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
    frames = [configured(server), *caller_audio(0.6, loud=True, rate=16000)]
    down, up = await run_test(stt, frames, params=params)
    assert not of(up, ErrorFrame)
    assert server.messages[0]["session"] == {
        "audio_format": {"encoding": "pcm_s16le", "sample_rate": 16000},
        "target_streaming_delay_ms": 480,
        "language": "fr",
    }
    [final] = of(down, TranscriptionFrame)
    assert final.text == "bonjour" and final.language == "fr"
    assert not any(m["type"] == "transcription.language" for m in server.sent)


async def test_a_rejected_key_is_fatal(server: FakeMistralRealtimeServer) -> None:
    stt = MistralSTTService(api_key="wrong", base_url=server.url)
    _, up = await run_test(stt, [SleepFrame(0.3)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert errors and errors[0].fatal
    assert "MISTRAL_API_KEY" in errors[0].error and "401" in errors[0].error


async def test_an_error_message_is_reported_and_transcription_goes_on(
    server: FakeMistralRealtimeServer,
) -> None:
    server.transcripts.append("still listening")

    def fail_next() -> bool:
        server.error_next = (500, "internal hiccup")
        return True

    frames = [configured(server), until(fail_next), *caller_audio(0.6, loud=True)]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    [error] = of(up, ErrorFrame)
    assert not error.fatal and "[500] internal hiccup" in error.error
    assert [f.text for f in of(down, TranscriptionFrame)] == ["still listening"]


async def test_settings_update_opens_a_socket_with_the_new_session(
    server: FakeMistralRealtimeServer,
) -> None:
    server.transcripts.extend(["first words", "deuxième"])
    stt = make_stt(server)
    frames = [
        configured(server),
        *caller_audio(0.4, loud=True),
        SleepFrame(0.2),
        STTUpdateSettingsFrame(delta=Settings(language=Language.FR)),
        until(lambda: any(m["type"] == "input_audio.end" for m in server.messages)),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    updates = [m["session"] for m in server.messages if m["type"] == "session.update"]
    assert [u.get("language") for u in updates] == [None, "fr"]
    assert [f.text for f in of(down, TranscriptionFrame)] == ["first words", "deuxième"]
    assert stt.settings.language == Language.FR and server.connections == 2


async def test_a_refused_model_keeps_the_old_socket_and_settings(
    server: FakeMistralRealtimeServer,
) -> None:
    server.transcripts.append("still here")
    stt = make_stt(server)
    frames = [
        configured(server),
        STTUpdateSettingsFrame(delta=Settings(model="voxtral-mini-2507")),
        until(lambda: server.rejected == 1),
        SleepFrame(0.1),
        *caller_audio(0.6, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    [error] = of(up, ErrorFrame)
    assert not error.fatal and "could not open a socket" in error.error and "400" in error.error
    assert stt.settings.model == "voxtral-mini-transcribe-realtime-2602"
    assert [f.text for f in of(down, TranscriptionFrame)] == ["still here"]
    assert server.connections == 1


def test_default_address_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "from-env")
    monkeypatch.delenv("CALLPIPE_MISTRAL_URL", raising=False)
    assert MistralSTTService().socket_url() == (
        "wss://api.mistral.ai/v1/audio/transcriptions/realtime"
        "?model=voxtral-mini-transcribe-realtime-2602"
    )
    stt = MistralSTTService(base_url="https://eu.example.com/")
    assert stt.socket_url().startswith("wss://eu.example.com/v1/audio/transcriptions/realtime?")
    monkeypatch.setenv("CALLPIPE_MISTRAL_URL", "ws://127.0.0.1:9")
    url = MistralSTTService().socket_url()
    assert url.startswith("ws://127.0.0.1:9/v1/audio/transcriptions/realtime?model=")
