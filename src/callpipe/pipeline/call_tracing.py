"""How a worker with ``enable_tracing=True`` gets its call traced, without knowing who records.

The call record (``callpipe.transports.call_record``) lives above the pipeline layer, so the
module that owns it registers a factory here (:func:`register_call_tracing`, done when the
transport base classes are imported). A worker asking for tracing calls :func:`start_call_trace`
once when built: it gets a :class:`CallTrace` to activate when it runs and finish when it ends,
or None when there is nothing for it to do (OpenTelemetry missing, or whoever serves the call
records it already and will export the trace itself). A worker that does not ask pays nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from callpipe.clock import Clock
from callpipe.processors.frame_processor import FrameObserver
from callpipe.utils.tracing.setup import is_tracing_available

logger = logging.getLogger(__name__)


class CallTrace(Protocol):
    """One call traced for the worker that asked for it."""

    def activate(self) -> Callable[[], None]:
        """The worker starts running (on its loop): start recording, and publish the record to
        what runs the call in this context (services' time to first byte, the transport's call
        id); returns the function undoing the publication."""
        ...

    @property
    def observer(self) -> FrameObserver:
        """Watches the call's frames (rare ones only) for the record; read after
        :meth:`activate`."""
        ...

    def finish(self, reason: str | None) -> None:
        """The pipeline has ended (``reason``: why, if known): export the trace."""
        ...


CallTraceFactory = Callable[[str | None, Mapping[str, Any], Clock | None], CallTrace | None]
"""``(conversation_id, additional_span_attributes, clock)`` → the call's trace, or None."""

_factory: CallTraceFactory | None = None
_warned = False


def register_call_tracing(factory: CallTraceFactory) -> None:
    """Install the factory of call traces (the module owning the call record does)."""
    global _factory
    _factory = factory


def start_call_trace(
    conversation_id: str | None, attributes: Mapping[str, Any], clock: Clock | None
) -> CallTrace | None:
    """The trace of the call a worker runs, or None (see the module's docstring)."""
    global _warned
    if not is_tracing_available() or _factory is None:
        if not _warned:
            _warned = True
            why = "needs opentelemetry-sdk (pip install 'callpipe[otel]')"
            if _factory is None:
                why = "needs a transport (nothing records the call)"
            logger.warning("enable_tracing=True has no effect: tracing %s", why)
        return None
    return _factory(conversation_id, attributes, clock)
