"""OpenTelemetry: each call's record exported as one trace (extra ``callpipe[otel]``).

When a call ends, its record becomes a trace with explicit timestamps, so nothing is traced on
the call's hot path:

- ``call`` (root): the whole call; ``callpipe.call.id`` (masked), ``callpipe.provider``,
  ``callpipe.end.by``, ``callpipe.end.reason``;
- ``turn <n>``: one exchange, from the caller starting to speak (or the bot starting, for a
  greeting) to the end of the bot's answer; events ``interrupted`` (``heard_secs``) and
  ``dtmf``; the per-turn latencies as ``callpipe.latency.*`` attributes;
- one span per service request under its turn: ``chat <model>`` for the LLM with the GenAI
  semantic-convention attributes (``gen_ai.operation.name=chat``, ``gen_ai.provider.name``,
  ``gen_ai.request.model``, ``gen_ai.usage.input_tokens``/``output_tokens`` when the service
  reported usage), ``stt <service>`` and ``tts <service>`` for speech (no GenAI convention
  covers them yet: ``callpipe.service.*``); each with ``callpipe.ttfb_secs``.

Needs records on (``--records``/``CALLPIPE_RECORDS=1``, or local mode) and ``CALLPIPE_OTEL=1``;
spans go to the global ``TracerProvider`` the application configured (exporters are yours to
choose; :func:`callpipe.utils.tracing.setup.setup_tracing` sets one up). Without the
``opentelemetry`` package :func:`trace_exporter` returns None: a no-op.

A call whose bot asked for tracing itself (``PipelineWorker(enable_tracing=True)``) is exported
by its recorder when it finishes, with Pipecat's span names
(:mod:`callpipe.utils.tracing.record_trace`); the exporter here skips it: one trace per call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from callpipe.utils.tracing.record_trace import record_exporter

OTEL_ENV = "CALLPIPE_OTEL"


def trace_exporter(tracer_provider: Any = None) -> Callable[[dict[str, Any]], None] | None:
    """A function exporting a record as a trace, or None without OpenTelemetry installed.

    Records of calls traced at the bot's request (a ``trace`` entry) are left alone: their
    recorder exported them already."""
    export = record_exporter(tracer_provider)
    if export is None:
        return None
    exporter = export

    def export_unless_traced(record: dict[str, Any]) -> None:
        if record.get("trace") is None:
            exporter(record)

    return export_unless_traced


def enabled_by_env() -> bool:
    return (os.environ.get(OTEL_ENV) or "").strip().lower() in ("1", "true", "yes", "on")
