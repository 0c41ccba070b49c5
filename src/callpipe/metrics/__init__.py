"""Metrics: the data carried by ``MetricsFrame`` and a process-wide registry for ``/metrics``."""
