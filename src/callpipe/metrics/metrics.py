"""What a ``MetricsFrame`` carries: one small dataclass per kind of measurement.

Services push ``MetricsFrame(data=[TTFBMetricsData(...)])`` when the pipeline runs with
``enable_metrics=True``; the same values always go to :mod:`callpipe.metrics.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class MetricsData:
    """Base: which processor measured it and (for services) which model."""

    processor: str
    model: str | None = None


@dataclass(slots=True)
class TTFBMetricsData(MetricsData):
    """Time to first byte in seconds: request sent → first useful output from the provider."""

    value: float = 0.0


@dataclass(slots=True)
class TTFAMetricsData(MetricsData):
    """Time to first audio of a TTS reply, in seconds: text sent → first audible sample.

    ``ttfa`` is ``ttfb`` (the first audio bytes) plus ``leading_silence``, the silence the
    provider put before the speech. ``ttfb`` repeats the reply's ``TTFBMetricsData``: do not
    add both up.
    """

    ttfa: float = 0.0
    ttfb: float = 0.0
    leading_silence: float = 0.0


@dataclass(slots=True)
class TTFATMetricsData(MetricsData):
    """Time to first answer token of one LLM inference, in seconds: request sent → the first
    text of the answer (or the first tool call), past any reasoning streamed before it.

    ``ttfat`` is ``ttfb`` (the first output of any kind) plus ``thinking_time``. ``ttfb``
    repeats the inference's ``TTFBMetricsData``: do not add both up.
    """

    ttfat: float = 0.0
    ttfb: float = 0.0
    thinking_time: float = 0.0


@dataclass(slots=True)
class TextAggregationMetricsData(MetricsData):
    """Seconds from a reply's first LLM text to its first complete sentence: what cutting
    the reply into sentences for the TTS costs the turn."""

    value: float = 0.0


@dataclass(slots=True)
class ProcessingMetricsData(MetricsData):
    """Total processing time of one request in seconds."""

    value: float = 0.0


@dataclass(slots=True)
class LLMTokenUsage:
    """Tokens one completion used, as the provider counted them.

    ``prompt_tokens`` includes cached input for OpenAI-style providers (the cache fields say
    how much of it was cached; do not add them again). ``completion_tokens`` includes
    ``reasoning_tokens``. ``total_tokens`` is everything billed. The optional fields stay
    ``None`` when the provider did not report them.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    input_audio_tokens: int | None = None
    output_audio_tokens: int | None = None
    cache_read_input_audio_tokens: int | None = None


@dataclass(slots=True)
class LLMUsageMetricsData(MetricsData):
    """Token usage of one completion (reported by the provider)."""

    value: LLMTokenUsage | None = None


@dataclass(slots=True)
class STTUsage:
    """Seconds of caller audio sent to an STT provider since the previous report.

    Each report is a delta: add them up for a call. Streaming services count everything they
    stream (silence too, which is what most providers bill); segmented services count the
    utterances they upload.
    """

    audio_seconds: float = 0.0


@dataclass(slots=True)
class STTUsageMetricsData(MetricsData):
    """Audio an STT service sent to its provider (reported with usage metrics enabled)."""

    value: STTUsage | None = None


@dataclass(slots=True)
class TTSUsageMetricsData(MetricsData):
    """Characters sent to a TTS provider for one utterance."""

    value: int = 0


@dataclass(slots=True)
class TurnLatencyMetricsData(MetricsData):
    """End-to-end latency of one turn: the caller stopped speaking → first bot audio sent.

    ``value`` counts from when the caller actually went quiet, i.e. it includes the VAD's
    ``stop_secs`` when the VAD reported it; ``vad_stop_secs`` says how much of it that was.
    """

    value: float = 0.0
    vad_stop_secs: float = 0.0


@dataclass(slots=True)
class TurnMetricsData(MetricsData):
    """One end-of-turn model decision: complete or not, its probability, and what it cost."""

    is_complete: bool = False
    probability: float = 0.0
    e2e_processing_time_ms: float = 0.0


@dataclass(slots=True)
class SmartTurnMetricsData(TurnMetricsData):
    """Pipecat's older name for :class:`TurnMetricsData` (deprecated there), kept so code that
    builds or matches it still works. callpipe's analyzers report ``TurnMetricsData``."""

    inference_time_ms: float = 0.0
    server_total_time_ms: float = 0.0
