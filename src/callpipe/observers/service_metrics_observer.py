"""Pipecat 1.x ``ServiceMetricsObserver``: each service measurement as its own record.

Every ``MetricsFrame`` item becomes one event: a latency record (time to first byte) or a usage
record (LLM tokens, TTS characters). Nothing is summed here; group the records per turn, call
or model where they are stored. Needs ``PipelineParams(enable_metrics=True)`` (and
``enable_usage_metrics=True`` for usage).

callpipe's services report TTFB, LLM token usage (with the cache, reasoning and audio token
counts the provider sent), STT audio seconds and TTS characters; the ``TTFA``/``TTFAT`` latency
kinds exist for Pipecat code that names them but are never reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from callpipe.frames.frames import MetricsFrame
from callpipe.metrics.metrics import (
    LLMUsageMetricsData,
    MetricsData,
    STTUsageMetricsData,
    TTFBMetricsData,
    TTSUsageMetricsData,
)
from callpipe.observers.base_observer import BaseObserver, FramePushed


class ServiceLatencyKind(StrEnum):
    TTFB = "ttfb"
    TTFA = "ttfa"
    TTFAT = "ttfat"


class ServiceUsageKind(StrEnum):
    STT = "stt"
    LLM = "llm"
    TTS = "tts"


class ServiceLatencyRecord(BaseModel):
    """How long one service took to answer one request (``seconds``); Unix ``timestamp``."""

    kind: ServiceLatencyKind
    processor: str
    model: str | None = None
    timestamp: float
    seconds: float
    ttfb_secs: float | None = None
    leading_silence_secs: float | None = None
    thinking_time_secs: float | None = None


class ServiceUsageRecord(BaseModel):
    """What one service used: tokens for an LLM request, characters for a TTS utterance,
    seconds of audio sent since its previous report for an STT."""

    kind: ServiceUsageKind
    processor: str
    model: str | None = None
    timestamp: float
    audio_seconds: float | None = None
    characters: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    input_audio_tokens: int | None = None
    output_audio_tokens: int | None = None
    cache_read_input_audio_tokens: int | None = None


class ServiceMetricsObserver(BaseObserver):
    """Events ``on_service_latency(observer, record)`` and ``on_service_usage(observer,
    record)``. Processing time and end-of-turn model metrics are not reported."""

    def __init__(self, *, time_source: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(observe_every_push=False, **kwargs)
        self._now = time_source
        self._register_event_handler("on_service_latency")
        self._register_event_handler("on_service_usage")

    async def on_push_frame(self, data: FramePushed) -> None:
        if not isinstance(data.frame, MetricsFrame):
            return
        for item in data.frame.data:
            if isinstance(item, TTFBMetricsData):
                latency = ServiceLatencyRecord(
                    kind=ServiceLatencyKind.TTFB,
                    seconds=item.value,
                    **self._common(item),
                )
                await self._call_event_handler("on_service_latency", latency)
            elif isinstance(item, LLMUsageMetricsData) and item.value is not None:
                tokens = item.value
                usage = ServiceUsageRecord(
                    kind=ServiceUsageKind.LLM,
                    prompt_tokens=tokens.prompt_tokens,
                    completion_tokens=tokens.completion_tokens,
                    total_tokens=tokens.total_tokens,
                    cache_read_input_tokens=tokens.cache_read_input_tokens,
                    cache_creation_input_tokens=tokens.cache_creation_input_tokens,
                    reasoning_tokens=tokens.reasoning_tokens,
                    input_audio_tokens=tokens.input_audio_tokens,
                    output_audio_tokens=tokens.output_audio_tokens,
                    cache_read_input_audio_tokens=tokens.cache_read_input_audio_tokens,
                    **self._common(item),
                )
                await self._call_event_handler("on_service_usage", usage)
            elif isinstance(item, STTUsageMetricsData) and item.value is not None:
                usage = ServiceUsageRecord(
                    kind=ServiceUsageKind.STT,
                    audio_seconds=item.value.audio_seconds,
                    **self._common(item),
                )
                await self._call_event_handler("on_service_usage", usage)
            elif isinstance(item, TTSUsageMetricsData):
                usage = ServiceUsageRecord(
                    kind=ServiceUsageKind.TTS, characters=item.value, **self._common(item)
                )
                await self._call_event_handler("on_service_usage", usage)

    def _common(self, item: MetricsData) -> dict[str, Any]:
        return {"processor": item.processor, "model": item.model, "timestamp": self._now()}
