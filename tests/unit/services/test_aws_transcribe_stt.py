"""AWSTranscribeSTTService against FakeAWSTranscribeServer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
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
from callpipe.services.aws.stt import (
    AWSTranscribeSTTService,
    language_to_aws_transcribe_language,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.aws import FAKE_ACCESS_KEY_ID
from callpipe.testing.fakes.aws_transcribe import AUDIO_HEADERS, FakeAWSTranscribeServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import caller_audio, of, until

RATE = 8000
Settings = AWSTranscribeSTTService.Settings
SECRET = "test-secret"


@pytest.fixture
async def server() -> AsyncIterator[FakeAWSTranscribeServer]:
    async with FakeAWSTranscribeServer(secret_key=SECRET) as fake:
        yield fake


def make_stt(server: FakeAWSTranscribeServer, **kwargs: Any) -> AWSTranscribeSTTService:
    kwargs.setdefault("api_key", SECRET)
    return AWSTranscribeSTTService(
        aws_access_key_id=FAKE_ACCESS_KEY_ID, region="eu-west-1", url=server.url, **kwargs
    )


def complete_results(server: FakeAWSTranscribeServer) -> int:
    results = [r for m in server.sent for r in m.get("Transcript", {}).get("Results", [])]
    return sum(not r["IsPartial"] for r in results)


def connected(server: FakeAWSTranscribeServer, count: int = 1) -> SleepFrame:
    return until(lambda: server.connections >= count)


async def test_partial_then_complete_results(server: FakeAWSTranscribeServer) -> None:
    server.transcripts.append("I would like to book a table")
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(1.5, loud=True),
        UserStoppedSpeakingFrame(),
        *caller_audio(0.5, loud=False),  # Transcribe's own endpointing completes the result
        until(lambda: complete_results(server) == 1),
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "I would like to book a table" and final.language == "en"
    assert final.result["IsPartial"] is False and final.result["ResultId"]
    interims = [f.text for f in of(down, InterimTranscriptionFrame)]
    assert len(interims) > 1 and all(final.text.startswith(i) for i in interims)
    query = server.queries[0]
    assert {k: v for k, v in query.items() if not k.startswith("X-Amz-")} == {
        "language-code": "en-US",
        "media-encoding": "pcm",
        "sample-rate": "8000",
        "enable-partial-results-stabilization": "true",
        "partial-results-stability": "high",
    }
    credential = query["X-Amz-Credential"].split("/")
    assert credential[0] == FAKE_ACCESS_KEY_ID and credential[2:] == [
        "eu-west-1",
        "transcribe",
        "aws4_request",
    ]
    assert query["X-Amz-Expires"] == "300" and query["X-Amz-SignedHeaders"] == "host"
    # 16-bit PCM at the line's rate, in AudioEvents of 100 ms (the last one flushed at the stop).
    assert len(server.audio) == int(2.0 * RATE) * 2
    audio_events = server.events[:-1]
    assert all(e == AUDIO_HEADERS for e in audio_events)


async def test_end_of_call_sends_the_end_of_stream_and_pushes_the_last_words(
    server: FakeAWSTranscribeServer,
) -> None:
    server.transcripts.append("goodbye then")
    frames = [connected(server), *caller_audio(0.6, loud=True)]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["goodbye then"]
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]
    assert server.ended == 1 and len(server.audio) == int(0.6 * RATE) * 2


async def test_language_and_rate_reach_the_url(server: FakeAWSTranscribeServer) -> None:
    server.transcripts.append("hola")
    stt = make_stt(
        server, settings=Settings(language=Language.ES_MX, partial_results_stability=None)
    )
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
    frames = [connected(server), *caller_audio(0.6, loud=True, rate=16000)]
    down, _ = await run_test(stt, frames, params=params)
    query = server.queries[0]
    assert query["language-code"] == "es-MX" and query["sample-rate"] == "16000"
    assert "partial-results-stability" not in query
    assert "enable-partial-results-stabilization" not in query
    [final] = of(down, TranscriptionFrame)
    assert final.text == "hola" and final.language == Language.ES_MX


def test_language_codes() -> None:
    assert language_to_aws_transcribe_language(Language.EN) == "en-US"
    assert language_to_aws_transcribe_language(Language.EN_GB) == "en-GB"
    assert language_to_aws_transcribe_language(Language.ET_EE) == "et-ET"
    assert language_to_aws_transcribe_language(Language.NB) == "no-NO"
    assert language_to_aws_transcribe_language(Language.FR) == "fr-FR"


async def test_settings_update_opens_a_new_socket_and_ends_the_old_stream(
    server: FakeAWSTranscribeServer,
) -> None:
    server.transcripts.extend(["first words", "deuxième"])
    stt = make_stt(server)
    frames = [
        connected(server),
        *caller_audio(0.4, loud=True),
        SleepFrame(0.2),
        STTUpdateSettingsFrame(delta=Settings(language=Language.FR)),
        until(lambda: server.connections == 2 and server.ended == 1),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert [q["language-code"] for q in server.queries] == ["en-US", "fr-FR"]
    assert [f.text for f in of(down, TranscriptionFrame)] == ["first words", "deuxième"]
    assert stt.settings.language == Language.FR and server.ended == 2


async def test_a_refused_new_stream_keeps_the_old_socket_and_settings(
    server: FakeAWSTranscribeServer,
) -> None:
    server.transcripts.append("still here")
    stt = make_stt(server)
    frames = [
        connected(server),
        STTUpdateSettingsFrame(delta=Settings(language="xx")),
        until(lambda: server.connections == 2),
        SleepFrame(0.6),
        *caller_audio(0.6, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and not errors[0].fatal
    assert "could not open a socket" in errors[0].error
    assert "BadRequestException" in errors[0].error
    assert stt.settings.language == "en"
    assert [f.text for f in of(down, TranscriptionFrame)] == ["still here"]


async def test_a_refused_signature_is_fatal(server: FakeAWSTranscribeServer) -> None:
    stt = make_stt(server, api_key="not-the-secret")
    _, up = await run_test(stt, [SleepFrame(10)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert errors and errors[0].fatal
    assert "403" in errors[0].error and "AWS_SECRET_ACCESS_KEY" in errors[0].error
    assert server.connections == 0 and server.rejected == 1


async def test_a_dropped_socket_reconnects_with_a_new_signature(
    server: FakeAWSTranscribeServer,
) -> None:
    server.transcripts.append("after the drop")
    frames = [
        connected(server),
        until(lambda: server.drop_on_next_audio() is None),
        *caller_audio(0.2, loud=True),
        connected(server, 2),
        *caller_audio(0.6, loud=True),
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    # The reconnect's URL was presigned again, and its signature checked.
    assert len(server.signed_at) == 2 and server.rejected == 0
    assert [f.text for f in of(down, TranscriptionFrame)] == ["after the drop"]


async def test_a_service_error_reconnects_a_bad_request_does_not(
    server: FakeAWSTranscribeServer,
) -> None:
    server.transcripts.extend(["one", "two"])

    def fail_next(name: str) -> bool:
        server.error_next = (name, f"scripted {name}")
        return True

    frames = [
        connected(server),
        until(lambda: fail_next("LimitExceededException")),
        *caller_audio(0.2, loud=True),
        connected(server, 2),
        until(lambda: fail_next("BadRequestException")),
        *caller_audio(0.2, loud=True),
        SleepFrame(0.5),
    ]
    _, up = await run_test(make_stt(server), frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert [e.fatal for e in errors] == [False, False]
    assert "LimitExceededException: scripted" in errors[0].error
    assert "BadRequestException: scripted" in errors[1].error
    assert server.connections == 2  # the refused request was not reopened


async def test_silence_keeps_a_muted_stream_alive(server: FakeAWSTranscribeServer) -> None:
    stt = make_stt(server)
    stt.keepalive_secs = 0.05
    frames = [
        connected(server),
        STTMuteFrame(mute=True),
        *caller_audio(0.2, loud=True),
        until(lambda: len(server.events) >= 2),
    ]
    _, up = await run_test(stt, frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert server.audio[: int(0.1 * RATE) * 2] == bytes(int(0.1 * RATE) * 2)  # silence only
    assert set(server.audio) == {0}


def test_constructor() -> None:
    stt = AWSTranscribeSTTService(
        aws_access_key_id="AKIA", aws_secret_access_key="secret", region="ap-south-1"
    )
    assert stt.region == "ap-south-1" and stt.settings.language == "en"
    assert stt.socket_url().startswith(
        "wss://transcribestreaming.ap-south-1.amazonaws.com:8443/stream-transcription-websocket?"
    )
    older = AWSTranscribeSTTService(api_key="s", aws_access_key_id="a", language=Language.DE)
    assert "language-code=de-DE" in older.socket_url()
    assert older.language_to_service_language(Language.PT_BR) == "pt-BR"
    with pytest.raises(ConfigurationError):
        AWSTranscribeSTTService(settings=Settings(partial_results_stability="max"))  # type: ignore[arg-type]
