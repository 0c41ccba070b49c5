"""A tiny process-wide metrics registry (histograms and counters) with no dependencies.

Why not ``prometheus_client`` directly: it is an optional extra, and services must record
latencies whether or not anything exports them. The runner reads :data:`REGISTRY` and renders
it for ``/metrics`` with :func:`render_prometheus_text`.

Everything here runs on the event loop thread; a lock keeps it safe for exporters that read
from another thread.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

LATENCY_BUCKETS: tuple[float, ...] = (
    0.05,
    0.1,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
)
"""Default histogram bounds in seconds: fine below one second, where voice latency lives."""

LabelKey = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class HistogramSample:
    """One labelled series of a histogram: cumulative-free bucket counts, sum and count."""

    labels: dict[str, str]
    bucket_counts: list[int]
    sum: float
    count: int


@dataclass(slots=True)
class _Series:
    counts: list[int]
    total: float = 0.0
    count: int = 0


class Histogram:
    """Observations bucketed by upper bound (``value <= bound``), per label set."""

    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.help = help
        self.buckets = tuple(sorted(buckets))
        self._series: dict[LabelKey, _Series] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        if math.isnan(value):
            return
        key = tuple(sorted(labels.items()))
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series([0] * (len(self.buckets) + 1))
            series.counts[index] += 1
            series.total += value
            series.count += 1

    def samples(self) -> list[HistogramSample]:
        """Snapshot; ``bucket_counts[i]`` counts values in (bound[i-1], bound[i]]; last: +Inf."""
        with self._lock:
            return [
                HistogramSample(dict(key), list(s.counts), s.total, s.count)
                for key, s in self._series.items()
            ]

    def reset(self) -> None:
        with self._lock:
            self._series.clear()


class Counter:
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help: str) -> None:
        self.name = name
        self.help = help
        self._values: dict[LabelKey, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def samples(self) -> list[tuple[dict[str, str], float]]:
        with self._lock:
            return [(dict(key), value) for key, value in self._values.items()]

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0.0)

    def reset(self) -> None:
        with self._lock:
            self._values.clear()


@dataclass
class MetricsRegistry:
    """Named metrics; ``histogram``/``counter`` return the existing metric for a known name."""

    _metrics: dict[str, Histogram | Counter] = field(default_factory=dict)

    def histogram(
        self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = Histogram(name, help, buckets)
        if not isinstance(metric, Histogram):
            raise TypeError(f"metric {name} is a {metric.kind}, not a histogram")
        return metric

    def counter(self, name: str, help: str) -> Counter:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = Counter(name, help)
        if not isinstance(metric, Counter):
            raise TypeError(f"metric {name} is a {metric.kind}, not a counter")
        return metric

    def collect(self) -> list[Histogram | Counter]:
        return list(self._metrics.values())

    def reset(self) -> None:
        """Clear every series (tests)."""
        for metric in self._metrics.values():
            metric.reset()


REGISTRY = MetricsRegistry()
"""The process-wide registry every service records into."""

SERVICE_TTFB = REGISTRY.histogram(
    "callpipe_service_ttfb_seconds",
    "Time to first byte of a speech/language service request (labels: service, kind, model).",
)
TURN_LATENCY = REGISTRY.histogram(
    "callpipe_turn_latency_seconds",
    "Caller stopped speaking -> first bot audio sent to the phone, per turn.",
)
SERVICE_ERRORS = REGISTRY.counter(
    "callpipe_service_errors_total",
    "Errors of speech/language services (labels: service, kind, reason).",
)


def _format_labels(labels: dict[str, str], extra: Iterable[tuple[str, str]] = ()) -> str:
    items = [*sorted(labels.items()), *extra]
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_bound(bound: float) -> str:
    return repr(float(bound))


def render_prometheus_text(registry: MetricsRegistry = REGISTRY) -> str:
    """The registry in the Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []
    for metric in registry.collect():
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        if isinstance(metric, Histogram):
            for sample in metric.samples():
                cumulative = 0
                for bound, count in zip(metric.buckets, sample.bucket_counts, strict=False):
                    cumulative += count
                    le = _format_labels(sample.labels, [("le", _format_bound(bound))])
                    lines.append(f"{metric.name}_bucket{le} {cumulative}")
                inf = _format_labels(sample.labels, [("le", "+Inf")])
                lines.append(f"{metric.name}_bucket{inf} {sample.count}")
                labels = _format_labels(sample.labels)
                lines.append(f"{metric.name}_sum{labels} {sample.sum}")
                lines.append(f"{metric.name}_count{labels} {sample.count}")
        else:
            for labels_dict, value in metric.samples():
                lines.append(f"{metric.name}{_format_labels(labels_dict)} {value}")
    return "\n".join(lines) + "\n"
