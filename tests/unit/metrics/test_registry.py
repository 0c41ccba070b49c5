"""The process-wide metrics registry and its Prometheus text rendering."""

from __future__ import annotations

import pytest

from callpipe.metrics.registry import MetricsRegistry, render_prometheus_text


def test_histogram_buckets_sum_count_and_labels() -> None:
    registry = MetricsRegistry()
    latency = registry.histogram("x_seconds", "Latency.", buckets=(0.1, 0.5, 1.0))
    latency.observe(0.05, service="A")
    latency.observe(0.5, service="A")  # on a bound: counted in that bucket
    latency.observe(3.0, service="A")
    latency.observe(0.2, service='B"q')
    assert registry.histogram("x_seconds", "ignored") is latency
    [a] = [s for s in latency.samples() if s.labels == {"service": "A"}]
    assert a.bucket_counts == [1, 1, 0, 1] and a.count == 3
    assert a.sum == pytest.approx(3.55)
    text = render_prometheus_text(registry)
    assert "# TYPE x_seconds histogram" in text
    assert 'x_seconds_bucket{service="A",le="0.5"} 2' in text
    assert 'x_seconds_bucket{service="A",le="+Inf"} 3' in text
    assert 'x_seconds_count{service="A"} 3' in text
    assert 'service="B\\"q"' in text  # label values are escaped


def test_counter_and_type_clash() -> None:
    registry = MetricsRegistry()
    errors = registry.counter("errors_total", "Errors.")
    errors.inc(kind="tts")
    errors.inc(2, kind="tts")
    assert errors.value(kind="tts") == 3
    assert 'errors_total{kind="tts"} 3.0' in render_prometheus_text(registry)
    with pytest.raises(TypeError):
        registry.histogram("errors_total", "not a histogram")
    registry.reset()
    assert errors.samples() == []
