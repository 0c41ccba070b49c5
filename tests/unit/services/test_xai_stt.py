"""XAISTTService against FakeXAISTTServer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    EndFrame,
    ErrorFrame,
    FatalErrorFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
)
from callpipe.services.xai.stt import XAISTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.xai import FakeXAISTTServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE, caller_audio, errors, finals, until

RATE = 8000


@pytest.fixture
async def server() -> AsyncIterator[FakeXAISTTServer]:
    async with FakeXAISTTServer() as fake:
        yield fake


def make_stt(server: FakeXAISTTServer, **kwargs: object) -> XAISTTService:
    return XAISTTService(api_key="test-key", ws_url=server.url, **kwargs)  # type: ignore[arg-type]


def speech_final(server: FakeXAISTTServer) -> bool:
    return any(m.get("speech_final") for m in server.sent)


async def test_utterance_end_is_one_final_after_interims(server: FakeXAISTTServer) -> None:
    server.transcripts.append("I would like to book a table")
    frames = [
        *caller_audio(1.2, loud=True),
        *caller_audio(0.6, loud=False),  # xAI's endpointing (400 ms) ends the utterance
        until(lambda: speech_final(server)),
    ]
    down, up = await run_test(make_stt(server), frames, params=PHONE)
    assert not errors(up)
    [final] = finals(down)
    assert final.text == "I would like to book a table"
    assert final.finalized and final.language == "en"
    assert final.result["type"] == "transcript.partial" and final.result["speech_final"]
    interims = [f.text for f in down if isinstance(f, InterimTranscriptionFrame)]
    assert interims and final.text.startswith(interims[0])
    query = server.queries[0]
    assert query["sample_rate"] == ["8000"] and query["encoding"] == ["pcm"]
    assert query["language"] == ["en"] and query["model"] == ["grok-voice-transcribe-2.0"]
    assert query["interim_results"] == ["true"]
    assert "endpointing" not in query and "diarize" not in query
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert server.commands == [{"type": "audio.done"}]


async def test_end_of_call_pushes_the_open_utterance_before_end_frame(
    server: FakeXAISTTServer,
) -> None:
    server.transcripts.append("goodbye then")
    server.created_after_secs = 0.3
    frames = [SleepFrame(0.1), *caller_audio(0.6, loud=True)]
    down, _ = await run_test(make_stt(server), frames, params=PHONE)
    [final] = finals(down)
    assert final.text == "goodbye then" and final.result["type"] == "transcript.done"
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]
    # Audio read before ``transcript.created`` was queued, not dropped.
    assert len(server.audio) == int(0.6 * RATE) * 2


async def test_audio_waits_for_the_session_to_be_ready(server: FakeXAISTTServer) -> None:
    server.created = False
    stt = make_stt(server)
    stt.end_timeout_secs = 0.2
    frames = [SleepFrame(0.1), *caller_audio(0.4, loud=True), SleepFrame(0.2)]
    await run_test(stt, frames, params=PHONE)
    assert server.connections == 1 and not server.audio


@pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
async def test_g711_encodings_send_a_byte_per_sample(
    server: FakeXAISTTServer, encoding: str
) -> None:
    server.transcripts.append("hello there")
    stt = make_stt(server, encoding=encoding)
    frames = [SleepFrame(0.1), *caller_audio(0.6, loud=True)]
    down, _ = await run_test(stt, frames, params=PHONE)
    assert server.queries[0]["encoding"] == [encoding]
    assert len(server.audio) == int(0.6 * RATE)
    assert [f.text for f in finals(down)] == ["hello there"]  # the fake heard the speech


async def test_settings_in_the_query(server: FakeXAISTTServer) -> None:
    settings = XAISTTService.Settings(
        language=Language.FR_CA, endpointing=250, diarize=True, interim_results=False
    )
    await run_test(make_stt(server, settings=settings), [SleepFrame(0.05)], params=PHONE)
    query = server.queries[0]
    assert query["language"] == ["fr"] and query["endpointing"] == ["250"]
    assert query["diarize"] == ["true"] and query["interim_results"] == ["false"]


async def test_settings_update_opens_a_socket_with_the_new_query(
    server: FakeXAISTTServer,
) -> None:
    server.transcripts.extend(["first words", "deuxième"])
    stt = make_stt(server)
    frames = [
        *caller_audio(0.4, loud=True),
        SleepFrame(0.2),
        STTUpdateSettingsFrame(delta=XAISTTService.Settings(language=Language.FR)),
        until(lambda: server.connections == 2 and len(server.commands) == 1),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PHONE)
    assert not errors(up)
    assert [q["language"] for q in server.queries] == [["en"], ["fr"]]
    # The old socket returned what it held at audio.done; the new one heard the rest.
    assert [f.text for f in finals(down)] == ["first words", "deuxième"]


async def test_refused_settings_keep_the_old_socket(server: FakeXAISTTServer) -> None:
    stt = make_stt(server)
    frames = [
        SleepFrame(0.1),
        STTUpdateSettingsFrame(delta=XAISTTService.Settings(endpointing=9000)),
        until(lambda: server.rejected == 1),
        SleepFrame(0.1),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PHONE)
    [error] = errors(up)
    assert not isinstance(error, FatalErrorFrame) and "endpointing" in error.error
    assert stt.settings.endpointing is None  # type: ignore[attr-defined]
    assert [f.text for f in finals(down)] == ["hello"]


async def test_provider_error_is_reported(server: FakeXAISTTServer) -> None:
    server.error_next = "audio could not be decoded"
    frames = [*caller_audio(0.2, loud=True), until(lambda: len(server.sent) > 1)]
    _, up = await run_test(make_stt(server), frames, params=PHONE)
    [error] = [f for f in up if isinstance(f, ErrorFrame)]
    assert "audio could not be decoded" in error.error
    assert not isinstance(error, FatalErrorFrame)


async def test_rejected_key_is_fatal(server: FakeXAISTTServer) -> None:
    stt = XAISTTService(api_key="wrong", ws_url=server.url)
    _, up = await run_test(stt, [SleepFrame(10)], params=PHONE)
    [error] = [f for f in up if isinstance(f, FatalErrorFrame)]
    assert "XAI_API_KEY" in error.error


def test_default_url_and_env_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    stt = XAISTTService(api_key="k", sample_rate=16000)
    url = stt.socket_url()
    assert url.startswith("wss://api.x.ai/v1/stt?")
    assert parse_qs(url.split("?", 1)[1])["sample_rate"] == ["16000"]
    monkeypatch.setenv("CALLPIPE_XAI_URL", "ws://127.0.0.1:9")
    stt = XAISTTService(api_key="k", sample_rate=16000)
    assert stt.socket_url().startswith("ws://127.0.0.1:9/v1/stt?")
    monkeypatch.setenv("CALLPIPE_XAI_STT_URL", "ws://127.0.0.1:8")
    stt = XAISTTService(api_key="k", sample_rate=16000)
    assert stt.socket_url().startswith("ws://127.0.0.1:8/v1/stt?")


def test_unsupported_options_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        XAISTTService(api_key="k", encoding="opus")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        XAISTTService(api_key="k", settings=XAISTTService.Settings(multichannel=True))
