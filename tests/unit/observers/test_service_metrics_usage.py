"""ServiceMetricsObserver carries 1.14's token details and STT usage into its records."""

from __future__ import annotations

from typing import Any

from callpipe.frames.frames import MetricsFrame
from callpipe.metrics.metrics import (
    LLMTokenUsage,
    LLMUsageMetricsData,
    STTUsage,
    STTUsageMetricsData,
)
from callpipe.observers.service_metrics_observer import ServiceMetricsObserver, ServiceUsageKind
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineWorker

from ..pipeline.helpers import Recorder
from .helpers import drive


async def test_usage_records_carry_token_details_and_stt_seconds() -> None:
    observer = ServiceMetricsObserver(time_source=lambda: 7.0)
    got: list[Any] = []
    observer.add_event_handler("on_service_usage", lambda o, record: got.append(record))
    tokens = LLMTokenUsage(
        prompt_tokens=1100,
        completion_tokens=60,
        total_tokens=1160,
        cache_read_input_tokens=1024,
        reasoning_tokens=40,
    )
    frame = MetricsFrame(
        data=[
            LLMUsageMetricsData(processor="llm#0", model="gpt", value=tokens),
            STTUsageMetricsData(processor="stt#0", model="nova", value=STTUsage(2.5)),
        ]
    )
    worker = PipelineWorker(Pipeline([Recorder()]), observers=[observer], idle_timeout_secs=None)
    await drive(worker, [frame])
    llm, stt = got
    assert llm.kind is ServiceUsageKind.LLM
    assert (llm.cache_read_input_tokens, llm.reasoning_tokens) == (1024, 40)
    assert llm.cache_creation_input_tokens is None
    assert (stt.kind, stt.processor, stt.model) == (ServiceUsageKind.STT, "stt#0", "nova")
    assert (stt.audio_seconds, stt.timestamp) == (2.5, 7.0)
