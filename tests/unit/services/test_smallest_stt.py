"""SmallestSTTService against FakeSmallestServer: the query, µ-law on a call, finalize at the
VAD stop, close_stream at the end, errors and settings updates."""

from __future__ import annotations

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
from callpipe.services.smallest.stt import SmallestSTTService, language_to_smallest_stt_language
from callpipe.testing import run_test
from callpipe.testing.fakes.smallest import FakeSmallestServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import WIDE, caller_audio, of, until

RATE = 8000
Settings = SmallestSTTService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeSmallestServer]:
    async with FakeSmallestServer(silence_secs=5.0) as fake:
        yield fake


def make_stt(server: FakeSmallestServer, **kwargs: Any) -> SmallestSTTService:
    return SmallestSTTService(api_key="test-key", base_url=server.url, **kwargs)


def connected(server: FakeSmallestServer, count: int = 1) -> SleepFrame:
    return until(lambda: server.stt_connections >= count)


async def test_turn_end_flushes_audio_then_finalizes(server: FakeSmallestServer) -> None:
    server.transcripts.append("I would like to book a table")
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(1.26, loud=True),  # 60 ms less than a batch waits in the queue
        UserStoppedSpeakingFrame(),
        until(lambda: any(m.get("from_finalize") for m in server.stt_sent)),
        SleepFrame(0.05),
        CancelFrame(),  # not an EndFrame: the final must come from the turn's finalize
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    assert not of(up, ErrorFrame)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "I would like to book a table"
    assert final.finalized and final.language == "en"
    assert final.result["session_id"] and final.result["is_final"] is True
    interims = [f.text for f in of(down, InterimTranscriptionFrame)]
    assert interims and all(final.text.startswith(i) for i in interims)
    # The whole turn (µ-law, a byte a sample) reached Smallest before ``finalize``.
    assert server.audio_at_finalize == [int(1.26 * RATE)]
    assert server.controls[0] == {"type": "finalize"}  # (the cancel then closes the stream)
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert server.stt_queries == [
        {
            "model": "pulse",
            "language": "en",
            "encoding": "mulaw",
            "sample_rate": "8000",
            "word_timestamps": "false",
            "full_transcript": "false",
            "sentence_timestamps": "false",
            "redact_pii": "false",
            "redact_pci": "false",
            "numerals": "auto",
            "diarize": "false",
            "endpointing": "true",
            "format": "true",
            "emotion_detection": "true",
            "gender_detection": "true",
            "itn_normalize": "false",
            "no_format_delay": "false",
        }
    ]


async def test_end_of_call_sends_close_stream_and_pushes_the_last_words(
    server: FakeSmallestServer,
) -> None:
    server.transcripts.append("goodbye then")
    frames = [connected(server), *caller_audio(0.6, loud=True)]
    down, _ = await run_test(make_stt(server), frames, params=PARAMS)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["goodbye then"]
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]
    assert server.controls == [{"type": "close_stream"}]
    assert server.stt_sent[-1]["is_last"] is True
    assert len(server.audio) == int(0.6 * RATE)


async def test_wideband_sends_pcm_and_settings_reach_the_query(
    server: FakeSmallestServer,
) -> None:
    settings = Settings(
        language=Language.DE_DE, word_timestamps=True, diarize=True, keywords="NVIDIA:2"
    )
    frames = [connected(server), *caller_audio(0.5, loud=True, rate=16000)]
    down, up = await run_test(make_stt(server, settings=settings), frames, params=WIDE)
    assert not of(up, ErrorFrame)
    query = server.stt_queries[0]
    assert query["language"] == "de" and query["encoding"] == "linear16"
    assert query["sample_rate"] == "16000" and query["keywords"] == "NVIDIA:2"
    assert query["word_timestamps"] == "true" and query["diarize"] == "true"
    assert len(server.audio) == int(0.5 * 16000) * 2
    assert [f.text for f in of(down, TranscriptionFrame)] == ["hello"]


async def test_server_endpointing_final_is_pushed(server: FakeSmallestServer) -> None:
    server.silence_secs = 0.3
    frames = [
        connected(server),
        *caller_audio(0.5, loud=True),
        *caller_audio(0.5, loud=False),
        until(lambda: any(m["is_final"] for m in server.stt_sent)),
        CancelFrame(),
    ]
    down, _ = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "hello" and not final.finalized


async def test_a_rejected_key_is_fatal(server: FakeSmallestServer) -> None:
    stt = SmallestSTTService(api_key="wrong", base_url=server.url)
    _, up = await run_test(stt, [SleepFrame(0.3)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert errors and errors[0].fatal
    assert "401" in errors[0].error and "SMALLEST_API_KEY" in errors[0].error


async def test_a_provider_error_message_is_reported(server: FakeSmallestServer) -> None:
    server.stt_error_next = "audio decode failed"
    frames = [connected(server), *caller_audio(0.5, loud=True)]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and not errors[0].fatal and "audio decode failed" in errors[0].error
    assert [f.text for f in of(down, TranscriptionFrame)] == ["hello"]  # the session goes on


async def test_settings_update_opens_a_socket_with_the_new_query(
    server: FakeSmallestServer,
) -> None:
    server.transcripts.extend(["first words", "deuxième"])
    stt = make_stt(server)
    frames = [
        connected(server),
        *caller_audio(0.4, loud=True),
        SleepFrame(0.2),
        STTUpdateSettingsFrame(delta=Settings(language=Language.FR)),
        until(lambda: server.stt_connections == 2 and {"type": "close_stream"} in server.controls),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert [q["language"] for q in server.stt_queries] == ["en", "fr"]
    assert [f.text for f in of(down, TranscriptionFrame)] == ["first words", "deuxième"]


async def test_pulse_2_is_english_only(server: FakeSmallestServer) -> None:
    with pytest.raises(ConfigurationError, match="English-only"):
        make_stt(server, settings=Settings(model="pulse-2", language=Language.FR))
    stt = make_stt(server, settings=Settings(model="pulse-2"))
    frames = [
        connected(server),
        STTUpdateSettingsFrame(delta=Settings(language=Language.ES)),
        SleepFrame(0.1),
    ]
    _, up = await run_test(stt, frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and "English-only" in errors[0].error and not errors[0].fatal
    assert stt.settings.language == "en" and server.stt_connections == 1
    assert server.stt_queries[0]["model"] == "pulse-2"


async def test_muted_socket_is_kept_alive(server: FakeSmallestServer) -> None:
    stt = make_stt(server)
    stt.keepalive_secs = 0.05
    frames = [connected(server), STTMuteFrame(mute=True), until(lambda: len(server.audio) >= 1600)]
    _, up = await run_test(stt, frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert set(server.audio) == {0xFF}  # µ-law silence


def test_key_encoding_and_language_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMALLEST_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SMALLEST_API_KEY"):
        SmallestSTTService()
    with pytest.raises(ConfigurationError, match="encoding"):
        SmallestSTTService(api_key="k", encoding="opus")
    assert language_to_smallest_stt_language(Language.PT_BR) == "pt"
    assert language_to_smallest_stt_language("uk-UA") == "uk"
