"""Pipecat 1.x ``MetricsLogObserver``: a DEBUG log line per measurement in a ``MetricsFrame``.

Services push ``MetricsFrame`` s only when the pipeline runs with ``enable_metrics=True``
(token and character counts also need ``enable_usage_metrics=True``).
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.frames.frames import MetricsFrame
from callpipe.metrics.metrics import (
    LLMUsageMetricsData,
    MetricsData,
    ProcessingMetricsData,
    TTFBMetricsData,
    TTSUsageMetricsData,
    TurnLatencyMetricsData,
    TurnMetricsData,
)
from callpipe.observers.base_observer import BaseObserver, FramePushed

logger = logging.getLogger(__name__)


class MetricsLogObserver(BaseObserver):
    """Logs time to first byte, processing time, LLM tokens, TTS characters, end-of-turn
    decisions and turn latency. ``include_metrics``: only these ``MetricsData`` classes (exact
    types), all of them when None."""

    def __init__(
        self, include_metrics: set[type[MetricsData]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(observe_every_push=False, **kwargs)
        self._include = include_metrics

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if not isinstance(frame, MetricsFrame):
            return
        secs = data.timestamp / 1_000_000_000
        for item in frame.data:
            if not isinstance(item, MetricsData):
                continue
            if self._include is not None and type(item) not in self._include:
                continue
            logger.debug("%s at %.3fs", _describe(item), secs)


def _describe(item: MetricsData) -> str:
    model = f" ({item.model})" if item.model else ""
    head = f"[{item.processor}]"
    if isinstance(item, TTFBMetricsData):
        return f"{head} TTFB{model}: {item.value}s"
    if isinstance(item, ProcessingMetricsData):
        return f"{head} PROCESSING TIME{model}: {item.value}s"
    if isinstance(item, LLMUsageMetricsData):
        usage = item.value
        if usage is None:
            return f"{head} LLM TOKEN USAGE{model}: unknown"
        return (
            f"{head} LLM TOKEN USAGE{model}: prompt: {usage.prompt_tokens}, "
            f"completion: {usage.completion_tokens}, total: {usage.total_tokens}"
        )
    if isinstance(item, TTSUsageMetricsData):
        return f"{head} TTS USAGE{model}: {item.value} characters"
    if isinstance(item, TurnMetricsData):
        verdict = "COMPLETE" if item.is_complete else "INCOMPLETE"
        return (
            f"{head} TURN{model}: {verdict} (probability: {item.probability:.2%}, "
            f"e2e: {item.e2e_processing_time_ms:.1f}ms)"
        )
    if isinstance(item, TurnLatencyMetricsData):
        return f"{head} TURN LATENCY{model}: {item.value}s ({item.vad_stop_secs}s VAD wait)"
    return f"{head} METRICS{model}: {item}"
