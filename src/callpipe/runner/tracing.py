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
choose). Without the ``opentelemetry`` package :func:`trace_exporter` returns None: a no-op.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

OTEL_ENV = "CALLPIPE_OTEL"

_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "google": "gcp.gemini", "groq": "groq"}


def trace_exporter(tracer_provider: Any = None) -> Callable[[dict[str, Any]], None] | None:
    """A function exporting a record as a trace, or None without OpenTelemetry installed."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    tracer = trace.get_tracer("callpipe", tracer_provider=tracer_provider)

    def export(record: dict[str, Any]) -> None:
        try:
            _export(tracer, trace, record)
        except Exception:  # tracing must never break a call's teardown
            logger.exception("could not export the call's trace")

    return export


def enabled_by_env() -> bool:
    return (os.environ.get(OTEL_ENV) or "").strip().lower() in ("1", "true", "yes", "on")


def _provider_name(service: str | None) -> str | None:
    if not service:
        return None
    lowered = service.lower()
    for prefix, name in _PROVIDERS.items():
        if lowered.startswith(prefix):
            return name
    return lowered.removesuffix("llmservice") or None


def _export(tracer: Any, trace: Any, record: dict[str, Any]) -> None:
    origin = datetime.fromisoformat(record["started_at"]).timestamp()
    duration = float(record["duration_secs"])

    def ns(rel: float | None, default: float) -> int:
        return int((origin + (default if rel is None else rel)) * 1e9)

    call = record["call"]
    root = tracer.start_span(
        "call",
        start_time=ns(0.0, 0.0),
        attributes=_clean(
            {
                "callpipe.call.id": call.get("id"),
                "callpipe.provider": call.get("provider"),
                "callpipe.session.id": call.get("session_id"),
                "callpipe.end.by": record["end"].get("by"),
                "callpipe.end.reason": record["end"].get("reason"),
                "callpipe.record.id": record.get("record_id"),
            }
        ),
    )
    root_context = trace.set_span_in_context(root)
    for turn in record["turns"]:
        caller, bot = turn["caller"] or {}, turn["bot"] or {}
        starts = [caller.get("start"), bot.get("start")]
        starts += [r["start"] for r in turn["requests"]]
        ends = [caller.get("end"), bot.get("end")] + [r["end"] for r in turn["requests"]]
        begin = min((s for s in starts if s is not None), default=None)
        if begin is None:
            continue
        finish = max((e for e in ends if e is not None), default=begin)
        attributes: dict[str, Any] = {
            "callpipe.turn.index": turn["index"],
            "callpipe.turn.interrupted": bool(bot.get("interrupted")),
        }
        for name, value in turn["latency"].items():
            attributes[f"callpipe.latency.{name}"] = value
        span = tracer.start_span(
            f"turn {turn['index']}",
            context=root_context,
            start_time=ns(begin, 0.0),
            attributes=_clean(attributes),
        )
        if bot.get("interrupted"):
            span.add_event(
                "interrupted",
                {"callpipe.heard_secs": bot.get("heard_secs") or 0.0},
                timestamp=ns(bot.get("end"), finish),
            )
        for key in turn["dtmf"]:
            span.add_event(
                "dtmf",
                {"callpipe.dtmf.digit": key["digit"], "callpipe.dtmf.direction": key["direction"]},
                timestamp=ns(key["t"], begin),
            )
        turn_context = trace.set_span_in_context(span)
        for request in turn["requests"]:
            _request_span(tracer, turn_context, request, ns)
        span.end(end_time=ns(finish, finish))
    root.end(end_time=ns(duration, duration))


def _request_span(tracer: Any, context: Any, request: dict[str, Any], ns: Any) -> None:
    kind, model, service = request["kind"], request["model"], request["service"]
    start = request["start"]
    first_byte = start + request["ttfb_secs"]
    end = request["end"] if request["end"] is not None else first_byte
    attributes: dict[str, Any] = {"callpipe.ttfb_secs": request["ttfb_secs"]}
    if kind == "llm":
        name = f"chat {model}" if model else "chat"
        attributes.update(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": _provider_name(service),
                "gen_ai.request.model": model,
            }
        )
        usage = request.get("usage") or {}
        if usage:
            attributes["gen_ai.usage.input_tokens"] = usage.get("input_tokens")
            attributes["gen_ai.usage.output_tokens"] = usage.get("output_tokens")
    else:
        name = f"{kind} {service}" if service else kind
        attributes.update({"callpipe.service.kind": kind, "callpipe.service.model": model})
    attributes["callpipe.service.name"] = service
    span = tracer.start_span(
        name, context=context, start_time=ns(start, start), attributes=_clean(attributes)
    )
    span.end(end_time=ns(end, end))


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """OpenTelemetry attributes cannot be None."""
    return {k: v for k, v in attributes.items() if v is not None}
