"""OpenAISTTService (segmented) against FakeOpenAIServer."""

from __future__ import annotations

import io
import json
import logging
import wave
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    MetricsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.services.openai.stt import OpenAISTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer, tone_pcm
from callpipe.testing.pipeline import SleepFrame

RATE = 8000
PARAMS = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE, enable_metrics=True)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


def packets(secs: float, *, loud: bool = True) -> list[Frame]:
    pcm = tone_pcm(secs, RATE) if loud else bytes(int(secs * RATE) * 2)
    step = RATE // 50 * 2
    return [InputAudioRawFrame(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)]


def make_stt(server: FakeOpenAIServer, **kwargs: object) -> OpenAISTTService:
    return OpenAISTTService(api_key="test-key", base_url=server.base_url, **kwargs)  # type: ignore[arg-type]


async def test_utterance_is_sent_as_wav_when_the_caller_stops(server: FakeOpenAIServer) -> None:
    server.transcripts.append("What time is it?")
    frames = [
        *packets(1.0, loud=False),
        UserStartedSpeakingFrame(),
        *packets(0.6),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.3),
    ]
    stt = make_stt(server, model="whisper-1", language="de", prompt="clinic", preroll_secs=0.2)
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["What time is it?"]
    [request] = server.transcription_requests
    assert request["model"] == "whisper-1" and request["language"] == "de"
    assert request["prompt"] == "clinic"
    with wave.open(io.BytesIO(request["file"])) as wav:
        assert wav.getframerate() == RATE and wav.getnchannels() == 1
        # 0.2 s pre-roll + 0.6 s of speech.
        assert wav.getnframes() == int(0.8 * RATE)
    # The transcript follows the stop; audio passes through; TTFB is reported.
    kinds = [type(f) for f in down]
    assert kinds.index(UserStoppedSpeakingFrame) < kinds.index(TranscriptionFrame)
    assert sum(k is InputAudioRawFrame for k in kinds) == 80
    ttfb = [
        d
        for f in down
        if isinstance(f, MetricsFrame)
        for d in f.data
        if isinstance(d, TTFBMetricsData)
    ]
    assert len(ttfb) == 1


async def test_no_request_without_speech_and_errors_are_reported(server: FakeOpenAIServer) -> None:
    frames = [UserStartedSpeakingFrame(), UserStoppedSpeakingFrame(), SleepFrame(0.1)]
    down, _ = await run_test(make_stt(server), frames, params=PARAMS)
    assert server.transcription_requests == []
    stt = OpenAISTTService(api_key="bad", base_url=server.base_url)
    frames = [
        UserStartedSpeakingFrame(),
        *packets(0.3),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.3),
    ]
    _, up = await run_test(stt, frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal and "401" in errors[0].error


async def test_rate_limited_transcription_is_retried(server: FakeOpenAIServer) -> None:
    server.transcription_statuses.append(429)
    server.transcripts.append("second time lucky")
    frames = [
        UserStartedSpeakingFrame(),
        *packets(0.3),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.5),
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert len(server.transcription_requests) == 2
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["second time lucky"]


async def test_transcriptions_go_through_the_users_http_client(server: FakeOpenAIServer) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    server.transcripts.append("through your client")
    frames = [
        UserStartedSpeakingFrame(),
        *packets(0.3),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.3),
    ]
    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        down, up = await run_test(make_stt(server, http_client=client), frames, params=PARAMS)
        assert not client.is_closed
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert seen == ["POST /v1/audio/transcriptions"]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["through your client"]


def utterances(count: int = 1) -> list[Frame]:
    one = [UserStartedSpeakingFrame(), *packets(0.3), UserStoppedSpeakingFrame(), SleepFrame(0.3)]
    return one * count


async def test_empty_transcriptions_are_pushed_only_when_asked(server: FakeOpenAIServer) -> None:
    server.transcripts.extend(["", ""])
    down, _ = await run_test(make_stt(server), utterances(), params=PARAMS)
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]
    stt = make_stt(server, push_empty_transcripts=True)
    down, up = await run_test(stt, utterances(), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    [frame] = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert frame.text == "" and frame.result == {"text": ""}
    assert len(server.transcription_requests) == 2


async def test_include_prob_metrics_asks_each_model_family_its_way(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def fields(count: int = 1, **kwargs: object) -> list[dict[str, object]]:
        server.transcription_requests.clear()
        await run_test(make_stt(server, **kwargs), utterances(count), params=PARAMS)
        return server.transcription_requests

    [plain] = await fields()
    assert "include[]" not in plain and plain["response_format"] == "json"
    [gpt] = await fields(include_prob_metrics=True)
    assert gpt["include[]"] == "logprobs" and gpt["response_format"] == "json"
    [whisper] = await fields(include_prob_metrics=True, model="whisper-1")
    assert "include[]" not in whisper and whisper["response_format"] == "verbose_json"
    with caplog.at_level(logging.WARNING, logger="callpipe.services.openai.stt"):
        diarize = await fields(2, include_prob_metrics=True, model="gpt-4o-transcribe-diarize")
    assert len(diarize) == 2 and not any("include[]" in f for f in diarize)
    assert len([r for r in caplog.records if "no probabilities" in r.getMessage()]) == 1


class _LogprobServer(FakeOpenAIServer):
    """Answers as the GPT transcription models do when asked for ``include[]=logprobs``."""

    async def _transcriptions(self, request: Request) -> Response:
        answered = await super()._transcriptions(request)
        if answered.status_code != 200 or not self.transcription_requests[-1].get("include[]"):
            return answered
        answer = json.loads(bytes(answered.body))
        answer["logprobs"] = [{"token": answer["text"], "logprob": -0.01, "bytes": [121]}]
        return JSONResponse(answer)


async def test_log_probabilities_come_with_the_transcription_frame() -> None:
    async with _LogprobServer() as server:
        server.transcripts.append("yes")
        stt = make_stt(server, include_prob_metrics=True)
        down, up = await run_test(stt, utterances(), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    [frame] = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert frame.text == "yes"
    assert frame.result == {
        "text": "yes",
        "logprobs": [{"token": "yes", "logprob": -0.01, "bytes": [121]}],
    }


def test_ttfs_p99_latency_is_kept() -> None:
    assert OpenAISTTService(api_key="k").ttfs_p99_latency == 2.01
    assert OpenAISTTService(api_key="k", ttfs_p99_latency=0.8).ttfs_p99_latency == 0.8


def utterance() -> list[Frame]:
    return [UserStartedSpeakingFrame(), *packets(0.3), UserStoppedSpeakingFrame(), SleepFrame(0.3)]


async def test_the_language_goes_as_the_code_openai_documents(server: FakeOpenAIServer) -> None:
    from callpipe.frames.frames import STTUpdateSettingsFrame
    from callpipe.transcriptions.language import Language

    server.transcripts.extend(["Hei.", "Kumusta.", "Olá."])
    stt = make_stt(server, settings=OpenAISTTService.Settings(language=Language("nb-NO")))
    frames = [
        *utterance(),
        STTUpdateSettingsFrame(delta=OpenAISTTService.Settings(language=Language("fil-PH"))),
        *utterance(),
        STTUpdateSettingsFrame(settings={"language": Language("pt-BR")}),
        *utterance(),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    # OpenAI's Norwegian is "no" and its Tagalog "tl"; a region goes as its base.
    assert [r["language"] for r in server.transcription_requests] == ["no", "tl", "pt"]
    # The transcripts carry the language as the bot gave it.
    languages = [f.language for f in down if isinstance(f, TranscriptionFrame)]
    assert languages == [Language("nb-NO"), Language("fil-PH"), Language("pt-BR")]


async def test_an_unlisted_language_warns_once_and_sends_its_base(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.transcripts.extend(["One.", "Two."])
    with caplog.at_level(logging.WARNING):
        stt = make_stt(server, language="yo-NG")
        await run_test(stt, [*utterance(), *utterance()], params=PARAMS)
    assert [r["language"] for r in server.transcription_requests] == ["yo", "yo"]
    assert len([r for r in caplog.records if "yo-NG" in r.getMessage()]) == 1


async def test_no_language_lets_the_api_detect_it(server: FakeOpenAIServer) -> None:
    server.transcripts.append("Bonjour.")
    await run_test(make_stt(server, language=None), utterance(), params=PARAMS)
    assert "language" not in server.transcription_requests[0]
