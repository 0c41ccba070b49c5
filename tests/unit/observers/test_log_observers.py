"""The Pipecat 1.x logging observers, through a real worker, read back with caplog."""

from __future__ import annotations

import logging

import pytest

from callpipe.frames.frames import (
    Frame,
    FunctionCallInProgressFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    TextFrame,
    TranscriptionFrame,
)
from callpipe.metrics.metrics import (
    LLMTokenUsage,
    LLMUsageMetricsData,
    TTFBMetricsData,
    TTSUsageMetricsData,
)
from callpipe.observers.base_observer import BaseObserver
from callpipe.observers.loggers.debug_log_observer import DebugLogObserver, FrameEndpoint
from callpipe.observers.loggers.llm_log_observer import LLMLogObserver
from callpipe.observers.loggers.metrics_log_observer import MetricsLogObserver
from callpipe.observers.loggers.transcription_log_observer import TranscriptionLogObserver
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.frame_processor import FrameDirection

from ..pipeline.helpers import Recorder
from .helpers import Step, drive


class Gate(Recorder):
    """A second kind of processor, for the source/destination filters."""


async def lines(
    caplog: pytest.LogCaptureFixture, module: str, observer: BaseObserver, steps: list[Step]
) -> list[str]:
    caplog.set_level(logging.DEBUG, logger=f"callpipe.observers.loggers.{module}")
    worker = PipelineWorker(
        Pipeline([Recorder(name="rec"), Gate(name="gate")]),
        observers=[observer],
        idle_timeout_secs=None,
    )
    await drive(worker, steps)
    return [r.getMessage() for r in caplog.records if r.name.endswith(module)]


async def test_debug_log_observer_logs_every_hop_with_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    audio = InputAudioRawFrame(audio=b"\0" * 320, sample_rate=8000, num_channels=1)
    got = await lines(
        caplog,
        "debug_log_observer",
        DebugLogObserver(frame_types=(TextFrame, InputAudioRawFrame)),
        [TextFrame("hello"), audio],
    )
    hello = [line for line in got if "TextFrame" in line]
    assert any(line.startswith("rec → gate: TextFrame") for line in hello)
    assert "text: 'hello'" in hello[0] and hello[0].endswith("s")
    assert len(hello) >= 3  # source → rec → gate → sink: every push
    audio_lines = [line for line in got if "InputAudioRawFrame" in line]
    assert audio_lines and all("audio:" not in line for line in audio_lines)  # excluded
    assert not any("EndFrame" in line for line in got)  # not asked for


async def test_debug_log_observer_filters_on_an_endpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    observer = DebugLogObserver(
        frame_types={  # the first matching type decides (TranscriptionFrame is a TextFrame)
            TranscriptionFrame: (Gate, FrameEndpoint.DESTINATION),
            TextFrame: (Gate, FrameEndpoint.SOURCE),
        },
        exclude_fields={"text"},
    )
    got = await lines(
        caplog, "debug_log_observer", observer, [TextFrame("a"), TranscriptionFrame("b")]
    )
    assert len(got) == 2, got
    assert got[0].startswith("gate → ") and "TextFrame" in got[0]
    assert " → gate: TranscriptionFrame" in got[1] and "'b'" not in got[1]


async def test_debug_log_observer_shows_upstream_with_a_left_arrow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got = await lines(
        caplog,
        "debug_log_observer",
        DebugLogObserver(frame_types=(TextFrame,)),
        [(TextFrame("up"), FrameDirection.UPSTREAM)],
    )
    assert any(line.startswith("gate ← rec: TextFrame") for line in got), got


async def test_llm_log_observer(caplog: pytest.LogCaptureFixture) -> None:
    context = LLMContext(messages=[{"role": "user", "content": "hi"}])
    steps: list[Step] = [
        LLMContextFrame(context=context),
        LLMFullResponseStartFrame(),
        LLMTextFrame("Hello"),
        LLMFullResponseEndFrame(),
        (
            FunctionCallInProgressFrame(function_name="lookup", tool_call_id="c1"),
            FrameDirection.UPSTREAM,
        ),
        TextFrame("not llm"),
    ]
    got = await lines(caplog, "llm_log_observer", LLMLogObserver(), steps)
    assert len(got) == 5, got  # once per frame, not per hop
    assert "LLM CONTEXT FRAME: [{'role': 'user', 'content': 'hi'}]" in got[0]
    assert "LLM START RESPONSE" in got[1] and "LLM GENERATING: 'Hello'" in got[2]
    assert "LLM END RESPONSE" in got[3]
    assert "LLM FUNCTION CALL (c1): 'lookup'" in got[4]


async def test_transcription_log_observer(caplog: pytest.LogCaptureFixture) -> None:
    steps: list[Step] = [
        InterimTranscriptionFrame("hel", user_id="caller"),
        TranscriptionFrame("hello", user_id="caller"),
        TextFrame("other"),
    ]
    got = await lines(caplog, "transcription_log_observer", TranscriptionLogObserver(), steps)
    assert len(got) == 2, got
    assert "INTERIM TRANSCRIPTION: 'hel' from 'caller'" in got[0]
    assert "→ TRANSCRIPTION: 'hello' from 'caller'" in got[1]


async def test_metrics_log_observer_logs_and_filters(caplog: pytest.LogCaptureFixture) -> None:
    metrics: Frame = MetricsFrame(
        data=[
            TTFBMetricsData(processor="llm#0", model="gpt", value=0.25),
            LLMUsageMetricsData(processor="llm#0", value=LLMTokenUsage(10, 5, 15)),
            TTSUsageMetricsData(processor="tts#0", value=42),
        ]
    )
    got = await lines(caplog, "metrics_log_observer", MetricsLogObserver(), [metrics])
    assert len(got) == 3, got
    assert got[0].startswith("[llm#0] TTFB (gpt): 0.25s at ")
    assert "LLM TOKEN USAGE: prompt: 10, completion: 5, total: 15" in got[1]
    assert "[tts#0] TTS USAGE: 42 characters" in got[2]
    caplog.clear()
    only_tts = MetricsLogObserver(include_metrics={TTSUsageMetricsData})
    again = MetricsFrame(data=list(metrics.data))  # type: ignore[attr-defined]
    got = await lines(caplog, "metrics_log_observer", only_tts, [again])
    assert len(got) == 1 and "TTS USAGE" in got[0]
