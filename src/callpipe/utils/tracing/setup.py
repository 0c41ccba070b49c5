"""Configure OpenTelemetry the way a Pipecat 1.14 bot does (``setup_tracing``).

A bot calls :func:`setup_tracing` once at start-up with the span exporter of its choice (OTLP to
Langfuse, Jaeger, Honeycomb, ...), then passes ``enable_tracing=True`` to its
:class:`~callpipe.pipeline.worker.PipelineWorker`: when the call ends, its record is exported as
one trace through the provider set here (see ``docs/call-records.md``).

Both functions need the ``opentelemetry-sdk`` package (``pip install "callpipe[otel]"``); without
it they return False and tracing is off.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

logger = logging.getLogger(__name__)


@cache
def is_tracing_available() -> bool:
    """True when the OpenTelemetry API and SDK can be imported (the ``otel`` extra)."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401
        from opentelemetry import trace  # noqa: F401
    except ImportError:
        return False
    return True


def setup_tracing(
    service_name: str = "callpipe",
    exporter: Any = None,
    console_export: bool = False,
) -> bool:
    """Install a global ``TracerProvider`` that batches spans to ``exporter``.

    Args:
        service_name: ``service.name`` of the resource every span carries (with
            ``service.instance.id`` from ``HOSTNAME`` and ``deployment.environment`` from
            ``ENVIRONMENT``, as in Pipecat).
        exporter: A configured span exporter (e.g. ``OTLPSpanExporter(endpoint=...)``); None:
            spans are only printed, if ``console_export`` is on.
        console_export: Also print every span to stdout (debugging).

    Returns:
        True once the provider is installed; False without the SDK, when a provider was already
        installed (OpenTelemetry keeps the first), or if it could not be set up (logged).
    """
    if not is_tracing_available():
        logger.warning("tracing needs opentelemetry-sdk: pip install 'callpipe[otel]'")
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    try:
        resource = Resource.create(
            {
                "service.name": service_name,
                "service.instance.id": os.getenv("HOSTNAME", "unknown"),
                "deployment.environment": os.getenv("ENVIRONMENT", "development"),
            }
        )
        provider = TracerProvider(resource=resource)
        if console_export:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    except Exception:
        logger.exception("could not set up tracing")
        return False
    if trace.get_tracer_provider() is not provider:  # OpenTelemetry lets a process set it once
        logger.warning("tracing: a TracerProvider was already installed; keeping it")
        return False
    return True
