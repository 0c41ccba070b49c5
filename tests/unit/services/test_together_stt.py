"""TogetherSTTService against FakeTogetherServer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    FatalErrorFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.together.stt import TogetherSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.together import FakeTogetherServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE, WIDE, caller_audio, of, until

Settings = TogetherSTTService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeTogetherServer]:
    async with FakeTogetherServer() as fake:
        yield fake


def make_stt(server: FakeTogetherServer, **kwargs: Any) -> TogetherSTTService:
    return TogetherSTTService(api_key="test-key", base_url=server.base_url, **kwargs)


def connected(server: FakeTogetherServer, count: int = 1) -> SleepFrame:
    return until(lambda: len(server.stt_queries) >= count)


def commits(server: FakeTogetherServer) -> int:
    return sum(1 for m in server.stt_messages if m["type"] == "input_audio_buffer.commit")


def completed(server: FakeTogetherServer) -> int:
    kind = "conversation.item.input_audio_transcription.completed"
    return sum(1 for m in server.sent if m["type"] == kind)


async def test_a_phone_turn_goes_out_at_16_khz_and_its_commit_brings_the_transcript(
    server: FakeTogetherServer,
) -> None:
    server.transcripts.append("book a table for two")
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(0.5, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: completed(server) >= 1),
        SleepFrame(0.05),
        CancelFrame(),  # not an EndFrame: the transcript must come from the turn's commit
    ]
    down, up = await run_test(make_stt(server), frames, params=PHONE, send_end_frame=False)
    assert not of(up, ErrorFrame)
    assert server.stt_queries[0] == {
        "model": ["openai/whisper-large-v3"],
        "input_audio_format": ["pcm_s16le_16000"],
        "turn_detection": ["none"],
    }
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert server.headers[0]["openai-beta"] == "realtime=v1"
    # 0.5 s at 8 kHz went out as 0.5 s at 16 kHz (the resampler's tail included).
    assert abs(len(server.audio) - 16000) <= 64
    assert commits(server) == 1
    assert server.stt_messages[-1] == {"type": "input_audio_buffer.commit"}
    [final] = of(down, TranscriptionFrame)
    assert final.text == "book a table for two"
    assert final.finalized and final.language == "en"
    assert final.result["type"] == "conversation.item.input_audio_transcription.completed"
    interims = of(down, InterimTranscriptionFrame)
    # The deltas' first words, before the whole of it.
    assert interims and interims[0].text.startswith("book")
    assert interims[0].text != final.text and down.index(interims[0]) < down.index(final)


async def test_wideband_audio_goes_as_it_is_and_no_empty_buffer_is_committed(
    server: FakeTogetherServer,
) -> None:
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(0.3, loud=True, rate=16000),
        UserStoppedSpeakingFrame(),
        until(lambda: completed(server) >= 1),
        UserStartedSpeakingFrame(),  # a turn with no audio at all: nothing to commit
        UserStoppedSpeakingFrame(),
        SleepFrame(0.2),
        CancelFrame(),
    ]
    down, up = await run_test(make_stt(server), frames, params=WIDE, send_end_frame=False)
    assert not of(up, ErrorFrame)
    assert len(server.audio) == 0.3 * 16000 * 2
    assert commits(server) == 1
    assert [f.text for f in of(down, TranscriptionFrame)] == ["hello"]


async def test_the_end_of_the_call_commits_what_is_left_before_the_end_frame(
    server: FakeTogetherServer,
) -> None:
    server.transcripts.append("goodbye")
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(0.3, loud=True),
        EndFrame(),  # the caller is still speaking
    ]
    down, up = await run_test(make_stt(server), frames, params=PHONE, send_end_frame=False)
    assert not of(up, ErrorFrame)
    assert commits(server) == 1
    final = of(down, TranscriptionFrame)[0]
    assert final.text == "goodbye"
    assert down.index(final) < down.index(of(down, EndFrame)[0])


async def test_a_failed_transcription_is_a_non_fatal_error(server: FakeTogetherServer) -> None:
    server.fail_next = "model overloaded"
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(0.3, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: any("failed" in m["type"] for m in server.sent)),
        SleepFrame(0.05),
        CancelFrame(),
    ]
    down, up = await run_test(make_stt(server), frames, params=PHONE, send_end_frame=False)
    [error] = of(up, ErrorFrame)
    assert not isinstance(error, FatalErrorFrame)
    assert "model overloaded" in error.error
    assert not of(down, TranscriptionFrame)


async def test_a_rejected_key_is_fatal(server: FakeTogetherServer) -> None:
    stt = TogetherSTTService(api_key="wrong", base_url=server.base_url)
    down, up = await run_test(stt, [SleepFrame(0.3)], params=PHONE)
    assert server.rejected >= 1
    fatal = of(up, FatalErrorFrame)
    assert fatal and "TOGETHER_API_KEY" in fatal[0].error


def error_on_next_message(server: FakeTogetherServer, text: str, code: str) -> SleepFrame:
    def arm() -> bool:
        server.error_next, server.error_code = text, code
        return True

    return SleepFrame(0.0, until=arm)


@pytest.mark.parametrize(
    ("code", "fatal"), [("rate_limit_exceeded", False), ("invalid_api_key", True)]
)
async def test_an_error_event_is_fatal_only_for_a_rejected_key(
    server: FakeTogetherServer, code: str, fatal: bool
) -> None:
    frames = [
        connected(server),
        error_on_next_message(server, "said the provider", code),
        *caller_audio(0.2, loud=False),
        until(lambda: any(m["type"] == "error" for m in server.sent)),
        SleepFrame(0.05),
        CancelFrame(),
    ]
    down, up = await run_test(make_stt(server), frames, params=PHONE, send_end_frame=False)
    [error] = of(up, ErrorFrame)
    assert isinstance(error, FatalErrorFrame) is fatal
    assert "said the provider" in error.error
    assert ("TOGETHER_API_KEY" in error.error) is fatal


async def test_a_new_model_opens_a_socket_with_it(server: FakeTogetherServer) -> None:
    frames = [
        connected(server),
        STTUpdateSettingsFrame(delta=Settings(model="openai/whisper-large-v3-turbo")),
        connected(server, 2),
        SleepFrame(0.1),
        CancelFrame(),
    ]
    down, up = await run_test(make_stt(server), frames, params=PHONE, send_end_frame=False)
    assert not of(up, ErrorFrame)
    assert server.stt_queries[1]["model"] == ["openai/whisper-large-v3-turbo"]
