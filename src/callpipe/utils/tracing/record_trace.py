"""A finished call record exported as one OpenTelemetry trace.

The trace is built after the call from the record (``docs/call-records.md``) with explicit
timestamps, so nothing is traced while the call runs. Two naming styles:

- callpipe's (``CALLPIPE_OTEL=1`` under the runner): ``call`` → ``turn <n>`` → ``chat <model>``,
  ``stt <service>``, ``tts <service>``, with ``callpipe.*`` attributes;
- Pipecat's, when the record carries a ``trace`` entry (the bot asked for tracing with
  ``PipelineWorker(enable_tracing=True)``): ``conversation`` → ``turn`` → ``stt``/``llm``/``tts``
  with ``conversation.id``, ``turn.number``, ``turn.was_interrupted``, ``metrics.ttfb`` and the
  GenAI attributes, plus the bot's ``additional_span_attributes`` on the root span, so dashboards
  built on a Pipecat bot's traces keep working. The ``callpipe.*`` attributes are kept too.

Everything here is a no-op without the ``opentelemetry`` package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

_LLM_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "groq": "groq",
    "awsbedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
}

RecordExporter = Callable[[dict[str, Any]], None]


def record_exporter(tracer_provider: Any = None) -> RecordExporter | None:
    """A function exporting a finished record as a trace (never raising), or None without
    OpenTelemetry installed. ``tracer_provider``: None for the global one."""
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


def export_record(record: dict[str, Any], tracer_provider: Any = None) -> None:
    """Export one finished record as a trace now (a no-op without OpenTelemetry)."""
    export = record_exporter(tracer_provider)
    if export is not None:
        export(record)


def provider_name(kind: str, service: str | None) -> str | None:
    """``gen_ai.provider.name`` for a service class name (``OpenAILLMService`` → ``openai``)."""
    if not service:
        return None
    lowered = service.lower()
    if kind == "llm":
        for prefix, name in _LLM_PROVIDERS.items():
            if lowered.startswith(prefix):
                return name
    return lowered.removesuffix(f"{kind}service") or None


def _export(tracer: Any, trace: Any, record: dict[str, Any]) -> None:
    origin = datetime.fromisoformat(record["started_at"]).timestamp()
    duration = float(record["duration_secs"])
    asked: dict[str, Any] | None = record.get("trace")  # Pipecat-style (enable_tracing)
    conversation_id = asked.get("conversation_id") if asked is not None else None

    def ns(rel: float | None, default: float) -> int:
        return int((origin + (default if rel is None else rel)) * 1e9)

    call = record["call"]
    attributes: dict[str, Any] = {
        "callpipe.call.id": call.get("id"),
        "callpipe.provider": call.get("provider"),
        "callpipe.session.id": call.get("session_id"),
        "callpipe.end.by": record["end"].get("by"),
        "callpipe.end.reason": record["end"].get("reason"),
        "callpipe.record.id": record.get("record_id"),
    }
    if asked is not None:
        attributes["conversation.id"] = conversation_id
        attributes["conversation.type"] = "voice"
        attributes.update(asked.get("attributes") or {})
    root = tracer.start_span(
        "conversation" if asked is not None else "call",
        start_time=ns(0.0, 0.0),
        attributes=_clean(attributes),
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
        interrupted = bool(bot.get("interrupted"))
        attributes = {
            "callpipe.turn.index": turn["index"],
            "callpipe.turn.interrupted": interrupted,
        }
        for name, value in turn["latency"].items():
            attributes[f"callpipe.latency.{name}"] = value
        if asked is not None:
            attributes.update(
                {
                    "turn.number": turn["index"] + 1,
                    "turn.type": "conversation",
                    "conversation.id": conversation_id,
                    "turn.was_interrupted": interrupted,
                    "turn.duration_seconds": round(finish - begin, 3),
                    "turn.user_bot_latency_seconds": turn["latency"].get("first_audio_sent_secs"),
                }
            )
        span = tracer.start_span(
            "turn" if asked is not None else f"turn {turn['index']}",
            context=root_context,
            start_time=ns(begin, 0.0),
            attributes=_clean(attributes),
        )
        if interrupted:
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
            if asked is not None:
                _pipecat_request_span(tracer, turn_context, request, turn, ns)
            else:
                _request_span(tracer, turn_context, request, ns)
        span.end(end_time=ns(finish, finish))
    root.end(end_time=ns(duration, duration))


def _bounds(request: dict[str, Any]) -> tuple[float, float]:
    start = float(request["start"])
    end = request["end"] if request["end"] is not None else start + request["ttfb_secs"]
    return start, float(end)


def _usage(request: dict[str, Any], attributes: dict[str, Any]) -> None:
    usage = request.get("usage") or {}
    if usage:
        attributes["gen_ai.usage.input_tokens"] = usage.get("input_tokens")
        attributes["gen_ai.usage.output_tokens"] = usage.get("output_tokens")


def _request_span(tracer: Any, context: Any, request: dict[str, Any], ns: Any) -> None:
    kind, model, service = request["kind"], request["model"], request["service"]
    start, end = _bounds(request)
    attributes: dict[str, Any] = {"callpipe.ttfb_secs": request["ttfb_secs"]}
    if kind == "llm":
        name = f"chat {model}" if model else "chat"
        attributes.update(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider_name("llm", service),
                "gen_ai.request.model": model,
            }
        )
        _usage(request, attributes)
    else:
        name = f"{kind} {service}" if service else kind
        attributes.update({"callpipe.service.kind": kind, "callpipe.service.model": model})
    attributes["callpipe.service.name"] = service
    span = tracer.start_span(
        name, context=context, start_time=ns(start, start), attributes=_clean(attributes)
    )
    span.end(end_time=ns(end, end))


def _pipecat_request_span(
    tracer: Any, context: Any, request: dict[str, Any], turn: dict[str, Any], ns: Any
) -> None:
    """A service span named and described as Pipecat's service decorators do."""
    kind, model, service = request["kind"], request["model"], request["service"]
    start, end = _bounds(request)
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": provider_name(kind, service),
        "gen_ai.request.model": model,
        "gen_ai.operation.name": "chat" if kind == "llm" else kind,
        "metrics.ttfb": request["ttfb_secs"],
        "callpipe.service.name": service,
    }
    if kind == "llm":
        attributes["gen_ai.output.type"] = "text"
        attributes["output"] = (turn["bot"] or {}).get("generated") or None
        _usage(request, attributes)
    elif kind == "tts":
        attributes["gen_ai.output.type"] = "speech"
    elif kind == "stt":
        attributes["transcript"] = (turn["caller"] or {}).get("text") or None
    span = tracer.start_span(
        kind, context=context, start_time=ns(start, start), attributes=_clean(attributes)
    )
    span.end(end_time=ns(end, end))


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """OpenTelemetry attributes cannot be None."""
    return {k: v for k, v in attributes.items() if v is not None}
