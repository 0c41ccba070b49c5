"""Where the parts of a call report to its record, if one is being kept.

The call's :class:`~callpipe.transports.call_record.CallRecorder` is published in
:data:`CALL_RECORDER` around ``bot()``; transports and services read it here (a tiny module, so
the transport base classes can use it without importing the recorder). Every hook is a no-op
when records are off, and each is called for rare events only (a request's first byte, a
function call, a playback mark), never per audio packet.

Importing it also registers how a worker with ``enable_tracing=True`` gets its call recorded and
traced (:mod:`callpipe.pipeline.call_tracing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from callpipe.clock import Clock
from callpipe.pipeline.call_tracing import CallTrace, register_call_tracing

if TYPE_CHECKING:
    from callpipe.transports.call_record import CallRecorder

CALL_RECORDER: ContextVar[CallRecorder | None] = ContextVar("callpipe_call_recorder", default=None)
"""The recorder of the call being served in this context (None: records are off)."""


def current_recorder() -> CallRecorder | None:
    return CALL_RECORDER.get()


def note_service_ttfb(
    kind: str, secs: float, model: str | None = None, service: str | None = None
) -> None:
    """A service (``stt``/``llm``/``tts``) measured its time to first byte for one request."""
    recorder = CALL_RECORDER.get()
    if recorder is not None:
        recorder.service_ttfb(kind, secs, model, service)


def note_transcript_detail(confidence: float | None, words: list[dict[str, Any]]) -> None:
    """An STT's final result is about to be pushed: its confidence and word timings (seconds
    into the STT's audio stream), attached to that transcript in the record."""
    recorder = CALL_RECORDER.get()
    if recorder is not None:
        recorder.transcript_detail(confidence, words)


def note_function_call(name: str, arguments: Any, result: Any) -> None:
    """The LLM called a function: its name, parsed arguments and the result it got."""
    recorder = CALL_RECORDER.get()
    if recorder is not None:
        recorder.function_call(name, arguments, result)


def _trace_call(
    conversation_id: str | None, attributes: Mapping[str, Any], clock: Clock | None
) -> CallTrace | None:
    from callpipe.transports.call_record import trace_call  # it imports the transport bases

    return trace_call(conversation_id, attributes, clock)


register_call_tracing(_trace_call)
