"""STT usage (seconds of audio sent to the provider), reported as Pipecat 1.14 does."""

from __future__ import annotations

from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    MetricsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import STTUsageMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.openai.stt import OpenAISTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.fakes.openai import FakeOpenAIServer, tone_pcm
from callpipe.testing.pipeline import SleepFrame

RATE = 8000


def params(*, usage: bool) -> PipelineParams:
    return PipelineParams(
        audio_in_sample_rate=RATE,
        audio_out_sample_rate=RATE,
        enable_metrics=True,
        enable_usage_metrics=usage,
    )


def packets(secs: float, *, loud: bool = True) -> list[Frame]:
    pcm = tone_pcm(secs, RATE) if loud else bytes(int(secs * RATE) * 2)
    step = RATE // 50 * 2
    return [InputAudioRawFrame(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)]


def stt_usage(frames: list[Frame]) -> list[tuple[int, STTUsageMetricsData]]:
    """Each usage report with its position in ``frames``."""
    return [
        (i, d)
        for i, f in enumerate(frames)
        if isinstance(f, MetricsFrame)
        for d in f.data
        if isinstance(d, STTUsageMetricsData)
    ]


async def test_segmented_stt_reports_each_utterance_it_sends() -> None:
    frames = [
        *packets(1.0, loud=False),
        UserStartedSpeakingFrame(),
        *packets(0.6),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.3),
    ]
    async with FakeOpenAIServer() as server:
        server.transcripts.append("hello")
        stt = OpenAISTTService(api_key="test-key", base_url=server.base_url, preroll_secs=0.2)
        down, _ = await run_test(stt, frames, params=params(usage=True))
    [(at, usage)] = stt_usage(down)
    assert usage.value is not None
    assert abs(usage.value.audio_seconds - 0.8) < 1e-6  # 0.2 s pre-roll + 0.6 s speech
    assert usage.processor == stt.name and usage.model == stt.model_name
    # Reported when the utterance goes out, before its transcript comes back.
    assert at < next(i for i, f in enumerate(down) if isinstance(f, TranscriptionFrame))


async def test_no_stt_usage_without_usage_metrics() -> None:
    frames = [
        UserStartedSpeakingFrame(),
        *packets(0.6),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.3),
    ]
    async with FakeOpenAIServer() as server:
        server.transcripts.append("hello")
        stt = OpenAISTTService(api_key="test-key", base_url=server.base_url)
        down, _ = await run_test(stt, frames, params=params(usage=False))
    assert any(isinstance(f, TranscriptionFrame) for f in down)
    assert stt_usage(down) == []


async def test_streaming_stt_reports_at_final_transcripts_and_at_the_end() -> None:
    async with FakeDeepgramServer() as server:
        server.transcripts.append("book a table")
        frames = [
            *packets(1.0),
            *packets(0.5, loud=False),
            SleepFrame(
                5.0,
                until=lambda: (
                    any(r["is_final"] for r in server.results)
                    and server.audio_bytes >= int(1.5 * RATE)
                ),
            ),
            SleepFrame(0.1),
            *packets(0.2, loud=False),  # sent after the final: reported when the call ends
        ]
        stt = DeepgramSTTService(api_key="test-key", url=server.url)
        down, _ = await run_test(stt, frames, params=params(usage=True))
    reports = stt_usage(down)
    assert len(reports) >= 2
    final_at = next(i for i, f in enumerate(down) if isinstance(f, TranscriptionFrame))
    assert reports[0][0] < final_at  # the usage that produced the transcript comes first
    total = sum(d.value.audio_seconds for _, d in reports if d.value is not None)
    assert abs(total - 1.7) < 1e-6  # every streamed second counts, silence included
