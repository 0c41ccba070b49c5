"""ElevenLabsSTTService (HTTP, one request per utterance) against its fake."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator

import pytest

from callpipe.frames.frames import (
    ErrorFrame,
    FatalErrorFrame,
    Frame,
    InputAudioRawFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.elevenlabs.stt import ElevenLabsSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsHTTPServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS

RATE = 8000


@pytest.fixture
async def server() -> AsyncIterator[FakeElevenLabsHTTPServer]:
    async with FakeElevenLabsHTTPServer() as fake:
        yield fake


def utterance(server: FakeElevenLabsHTTPServer, count: int = 1) -> list[Frame]:
    pcm = tone_pcm(0.4, RATE)
    return [
        UserStartedSpeakingFrame(),
        *[InputAudioRawFrame(pcm[i : i + 320], RATE) for i in range(0, len(pcm), 320)],
        UserStoppedSpeakingFrame(),
        SleepFrame(3.0, until=lambda: len(server.answers) >= count),
        SleepFrame(0.05),
    ]


async def test_each_utterance_is_one_request(server: FakeElevenLabsHTTPServer) -> None:
    server.transcripts.append("I need a taxi")
    settings = ElevenLabsSTTService.Settings(
        language=Language.DE_DE, keyterms=["Callpipe", "New York"], no_verbatim=True
    )
    stt = ElevenLabsSTTService(
        api_key="test-key", base_url=server.base_url, aiohttp_session=object(), settings=settings
    )
    down, up = await run_test(stt, utterance(server), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    [final] = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert final.text == "I need a taxi" and final.language == "de"
    assert final.result["transcription_id"] == server.answers[0]["transcription_id"]
    request = server.requests[0]
    assert request["model_id"] == ["scribe_v2"] and request["language_code"] == ["de"]
    assert request["keyterms"] == ["Callpipe", "New York"]  # one field per term
    assert request["no_verbatim"] == ["true"] and "tag_audio_events" not in request
    with wave.open(io.BytesIO(request["file"][0])) as wav:
        assert wav.getframerate() == RATE and wav.getnframes() >= int(0.4 * RATE)


async def test_settings_apply_from_the_next_utterance(
    server: FakeElevenLabsHTTPServer,
) -> None:
    stt = ElevenLabsSTTService(api_key="test-key", base_url=server.base_url)
    delta = ElevenLabsSTTService.Settings(language="fr", tag_audio_events=False)
    frames = [*utterance(server), STTUpdateSettingsFrame(delta=delta), *utterance(server, 2)]
    await run_test(stt, frames, params=PARAMS)
    assert [r["language_code"] for r in server.requests] == [["en"], ["fr"]]
    assert server.requests[1]["tag_audio_events"] == ["false"]


async def test_a_server_error_is_retried_once(server: FakeElevenLabsHTTPServer) -> None:
    server.statuses.extend([503])
    stt = ElevenLabsSTTService(api_key="test-key", base_url=server.base_url)
    down, up = await run_test(stt, utterance(server), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["hello"]


async def test_a_rejected_key_is_fatal(server: FakeElevenLabsHTTPServer) -> None:
    stt = ElevenLabsSTTService(api_key="wrong", base_url=server.base_url)
    frames = [*utterance(server)[:-2], SleepFrame(0.5)]
    _, up = await run_test(stt, frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, FatalErrorFrame)]
    assert errors and "Invalid API key" in errors[0].error
