"""AzureSTTService (REST API for short audio, one request per utterance) against its fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    STTUpdateSettingsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.azure.stt import AzureSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.azure import FakeAzureSpeechServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE, errors, finals

RATE = 8000


@pytest.fixture
async def server() -> AsyncIterator[FakeAzureSpeechServer]:
    async with FakeAzureSpeechServer() as fake:
        yield fake


def utterance(
    server: FakeAzureSpeechServer, count: int = 1, *, secs: float = 0.4, loud: bool = True
) -> list[Frame]:
    pcm = tone_pcm(secs, RATE) if loud else bytes(int(secs * RATE) * 2)
    step = RATE * 2  # one-second packets keep the long utterance quick to feed
    return [
        UserStartedSpeakingFrame(),
        *[InputAudioRawFrame(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)],
        UserStoppedSpeakingFrame(),
        SleepFrame(3.0, until=lambda: len(server.requests) >= count),
        SleepFrame(0.05),
    ]


def make(server: FakeAzureSpeechServer, **kwargs: object) -> AzureSTTService:
    return AzureSTTService(api_key="test-key", private_endpoint=server.base_url, **kwargs)  # type: ignore[arg-type]


async def test_an_utterance_is_one_request_of_16khz_wav(server: FakeAzureSpeechServer) -> None:
    server.transcripts.append("I need a taxi.")
    down, up = await run_test(make(server), utterance(server), params=PHONE)
    assert not errors(up)
    [final] = finals(down)
    assert final.text == "I need a taxi." and final.finalized
    assert final.result == server.answers[0] and final.result["NBest"][0]["Confidence"] > 0
    request = server.requests[0]
    assert request["path"] == "/stt/speech/recognition/conversation/cognitiveservices/v1"
    assert request["query"] == {"language": "en-US", "format": "detailed"}
    assert request["headers"]["ocp-apim-subscription-key"] == "test-key"
    assert request["headers"]["accept"] == "application/json"
    # The phone call's 8 kHz audio goes as the one documented format: 16 kHz WAV.
    assert request["sample_rate"] == 16000 and abs(request["audio_secs"] - 0.4) < 0.05


async def test_silence_gives_no_transcript_and_no_error(server: FakeAzureSpeechServer) -> None:
    down, up = await run_test(make(server), utterance(server, loud=False), params=PHONE)
    assert server.answers[0]["RecognitionStatus"] == "InitialSilenceTimeout"
    assert not finals(down) and not errors(up)


async def test_an_error_status_is_reported_and_the_call_goes_on(
    server: FakeAzureSpeechServer,
) -> None:
    server.outcomes.extend(["Error", "NoMatch"])
    frames = [*utterance(server), *utterance(server, 2), *utterance(server, 3)]
    down, up = await run_test(make(server), frames, params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "could not recognize" in error.error
    assert [f.text for f in finals(down)] == ["hello"]  # NoMatch: nothing, then speech heard


async def test_language_profanity_and_custom_model_in_the_query(
    server: FakeAzureSpeechServer,
) -> None:
    settings = AzureSTTService.Settings(language=Language.DE, profanity="raw")
    stt = make(server, settings=settings, endpoint_id="my-model")
    delta = AzureSTTService.Settings(language="en-GB", profanity="removed")
    frames = [*utterance(server), STTUpdateSettingsFrame(delta=delta), *utterance(server, 2)]
    await run_test(stt, frames, params=PHONE)
    assert [r["query"] for r in server.requests] == [
        {"language": "de-DE", "format": "detailed", "profanity": "raw", "cid": "my-model"},
        {"language": "en-GB", "format": "detailed", "profanity": "removed", "cid": "my-model"},
    ]


async def test_an_utterance_over_60_seconds_is_cut(server: FakeAzureSpeechServer) -> None:
    down, up = await run_test(make(server), utterance(server, secs=62.0), params=PHONE)
    assert not errors(up) and finals(down)
    assert 59.0 < server.requests[0]["audio_secs"] <= 60.0


async def test_a_rejected_key_is_fatal(server: FakeAzureSpeechServer) -> None:
    stt = AzureSTTService(api_key="wrong", private_endpoint=server.base_url)
    _, up = await run_test(stt, utterance(server), params=PHONE)
    assert errors(up) and errors(up)[0].fatal
    assert "401" in errors(up)[0].error and "AZURE_SPEECH_API_KEY" in errors(up)[0].error


async def test_a_server_error_is_retried_once(server: FakeAzureSpeechServer) -> None:
    server.statuses.append(503)
    down, up = await run_test(make(server), utterance(server, 2), params=PHONE)
    assert not errors(up) and [f.text for f in finals(down)] == ["hello"]
    assert len(server.requests) == 2


def test_regional_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLPIPE_AZURE_SPEECH_URL", raising=False)
    stt = AzureSTTService(api_key="k", region="westeurope")
    assert stt.base_url == "https://westeurope.stt.speech.microsoft.com"
