"""Pipecat 1.14's TTS latency metrics: TTFA (TTFB plus the provider's leading silence) and the
time the sentence cutter holds a reply's first text; plus the speech-onset detector they use."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from callpipe.audio.utils import detect_speech_onset
from callpipe.frames.frames import (
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    MetricsFrame,
    TextFrame,
    TTSSpeakFrame,
)
from callpipe.metrics.metrics import (
    MetricsData,
    TextAggregationMetricsData,
    TTFAMetricsData,
    TTFBMetricsData,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.tts_service import TTSService
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame

RATE = 8000


def tone(secs: float, amplitude: int = 8000, offset: int = 0) -> np.ndarray:
    n = np.arange(int(secs * RATE))
    return (np.sin(2 * np.pi * 300 * n / RATE) * amplitude + offset).astype(np.int16)


def silence(secs: float, offset: int = 0) -> np.ndarray:
    return np.full(int(secs * RATE), offset, dtype=np.int16)


def test_onset_is_the_first_sample_of_sustained_sound() -> None:
    pcm = np.concatenate([silence(0.3), tone(0.2)]).tobytes()
    assert detect_speech_onset(pcm, RATE) == pytest.approx(0.3 * RATE, abs=2)
    # A DC offset is not sound; stereo is averaged.
    pcm = np.concatenate([silence(0.3, 300), tone(0.2, offset=300)])
    assert detect_speech_onset(pcm.tobytes(), RATE) == pytest.approx(0.3 * RATE, abs=2)
    stereo = np.stack([pcm, pcm], axis=1).reshape(-1).tobytes()
    assert detect_speech_onset(stereo, RATE, 2) == pytest.approx(0.3 * RATE, abs=2)
    # Too short to be sure (under 50 ms of sound), a lone click, only silence: no onset yet.
    assert detect_speech_onset(np.concatenate([silence(0.3), tone(0.03)]).tobytes(), RATE) is None
    click = silence(0.3)
    click[1000] = 30000
    assert detect_speech_onset(click.tobytes(), RATE) is None
    assert detect_speech_onset(b"", RATE) is None


class PaddedTTS(TTSService):
    """A provider that answers after ``delay`` with ``lead`` seconds of silence first."""

    def __init__(self, lead: float, delay: float = 0.05) -> None:
        super().__init__(sample_rate=RATE)
        self.lead = lead
        self.delay = delay

    async def run_tts(self, text: str, context_id: str) -> None:
        async def speak() -> None:
            await asyncio.sleep(self.delay)
            audio = np.concatenate([silence(self.lead), tone(0.3)]).tobytes()
            for start in range(0, len(audio), 320):  # 20 ms chunks
                await self.append_audio(context_id, audio[start : start + 320])
            await self.finish_context(context_id)

        self.create_task(speak(), "speak")

    async def flush_context(self, context_id: str) -> None:
        pass


def metrics(frames: list[Frame]) -> list[MetricsData]:
    return [d for f in frames if isinstance(f, MetricsFrame) for d in f.data]


async def test_ttfa_adds_the_leading_silence_to_the_ttfb() -> None:
    params = PipelineParams(enable_metrics=True)
    down, _ = await run_test(
        PaddedTTS(lead=0.25), [TTSSpeakFrame("Hello there."), SleepFrame(0.5)], params=params
    )
    data = metrics(down)
    ttfb = [d for d in data if isinstance(d, TTFBMetricsData)]
    ttfa = [d for d in data if isinstance(d, TTFAMetricsData)]
    assert len(ttfb) == 1 and len(ttfa) == 1
    assert ttfa[0].ttfb == ttfb[0].value >= 0.04
    assert ttfa[0].leading_silence == pytest.approx(0.25, abs=0.002)
    assert ttfa[0].ttfa == pytest.approx(ttfa[0].ttfb + 0.25, abs=0.002)
    # Without enable_metrics nothing is watched or pushed.
    down, _ = await run_test(PaddedTTS(lead=0.25), [TTSSpeakFrame("Hi."), SleepFrame(0.5)])
    assert metrics(down) == []


async def test_text_aggregation_is_the_wait_for_the_first_sentence() -> None:
    params = PipelineParams(enable_metrics=True)
    frames: list[Frame] = [
        LLMFullResponseStartFrame(),
        TextFrame("Your table"),
        SleepFrame(0.1),
        TextFrame(" is booked."),
        TextFrame(" See you at eight."),
        LLMFullResponseEndFrame(),
        SleepFrame(0.8),
    ]
    down, _ = await run_test(PaddedTTS(lead=0.0), frames, params=params)
    waits = [d for d in metrics(down) if isinstance(d, TextAggregationMetricsData)]
    assert len(waits) == 1  # the first sentence of the reply only
    assert 0.09 <= waits[0].value < 0.3
