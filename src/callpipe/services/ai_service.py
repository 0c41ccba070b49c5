"""AIService: what every speech/language service shares.

- **Fast start.** On ``StartFrame`` a service pushes the frame on at once and connects in a
  background task, so all services connect in parallel while the transport is already reading
  the caller's audio. Work that needs the connection waits for it (bounded).
- **Clear failures.** Missing credentials raise :class:`~callpipe.errors.ConfigurationError` at
  construction; a rejected key at start is reported as a fatal ``ErrorFrame`` naming the
  service and the variable to fix.
- **Metrics.** Time to first byte per request goes to the process registry always, and into a
  ``MetricsFrame`` when the pipeline runs with ``enable_metrics=True``.
- **Metadata.** Right after the ``StartFrame`` has gone on, and again on a
  ``ServiceSwitcherRequestMetadataFrame`` (a switcher made the service active), a service
  broadcasts what :meth:`AIService.service_metadata_frame` returns (STT and LLM services say
  who they are; see Pipecat 1.14's ``ServiceMetadataFrame``).
- **Connection events.** STT and TTS services register Pipecat 1.14's ``on_connected``,
  ``on_disconnected`` and ``on_connection_error``; a service's provider sockets report to it
  (:class:`~callpipe.services.websocket_service.ConnectionListener`), and it fires
  ``on_connected`` when its first socket opens, ``on_disconnected`` when its last one closes
  (a socket opened to replace another, e.g. after a settings change, is no new connection),
  and ``on_connection_error`` with the error's text each time connecting fails. Handlers run
  in their own task: the socket and the pipeline never wait for them. The gRPC streaming
  recognizers (Google, NVIDIA) report their streams the same way
  (:mod:`callpipe.services._grpc_stream`); a service without a socket or a standing stream
  (an HTTP one, or one gRPC call per sentence or utterance) registers them and never fires them.
- **Pipecat 1.14's socket options.** ``reconnect_on_error=False`` stops a provider socket that
  dropped being reconnected: the drop is reported as an error at once, as a close the provider
  meant is. ``ws_close_timeout`` bounds the wait for the provider's answer to a close (2 s
  otherwise). ``ws_send_timeout``, ``reconnect_backoff_min_wait`` and
  ``reconnect_backoff_max_wait`` are accepted and ignored with a warning: a peer that stops
  reading is dropped by the socket's ping timeout, and the reconnect backoff is callpipe's own
  (a quarter of a second, doubling, at most 4 s: a call cannot wait Pipecat's 4-10 s). A
  service without a provider socket accepts these and has nothing to apply them to.
  ``metrics`` and ``task_manager`` (Pipecat's frame processor options) are accepted and ignored
  with a warning by ``FrameProcessor``, as for any processor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import warnings
from collections.abc import Generator
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.errors import ServiceAuthError as ServiceAuthError  # re-exported: its old home
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    FatalErrorFrame,
    Frame,
    MetricsFrame,
    ServiceMetadataFrame,
    ServiceSwitcherRequestMetadataFrame,
    StartFrame,
)
from callpipe.metrics.metrics import MetricsData, ProcessingMetricsData, TTFBMetricsData
from callpipe.metrics.registry import SERVICE_ERRORS, SERVICE_TTFB
from callpipe.processors.base_object import cancel_and_wait
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.transports.record_hooks import note_service_ttfb
from callpipe.utils.base_object import warn_ignored_option as warn_ignored_option
from callpipe.utils.errors import ErrorCategory, classify_service_error

logger = logging.getLogger(__name__)


class MetricMark:
    """What :meth:`AIService.start_ttfb_metrics` returns: the mark is already made, and
    awaiting it (as Pipecat's services do, its method being a coroutine) finishes at once."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator: awaiting it returns None without suspending


METRIC_MARKED = MetricMark()


def warn_deprecated_setter(owner: object, field: str, frame: str, value: object) -> None:
    """The ``DeprecationWarning`` of Pipecat's ``set_<field>`` methods (``frame``: the update
    frame to push instead), and a log line naming the new value."""
    warnings.warn(
        f"{type(owner).__name__}.set_{field} is deprecated; push "
        f"{frame}(delta=...({field}=...)) instead",
        DeprecationWarning,
        stacklevel=3,
    )
    logger.info("%s: switching the %s to %s", owner, field, value)


def resolve_api_key(service: str, api_key: str | None, env_var: str) -> str:
    """The key from the argument or ``env_var``; a clear ConfigurationError when neither is set."""
    key = api_key or os.environ.get(env_var)
    if not key:
        raise ConfigurationError(
            f"{service}: no API key. Pass api_key=... or set the {env_var} environment variable."
        )
    return key


_BACKOFF = "callpipe reconnects after 0.25 s, doubling up to 4 s"


class AIService(FrameProcessor):
    """Base of STT, LLM and TTS services (see the module docstring)."""

    kind = "service"
    """``stt``, ``llm`` or ``tts``: a label for metrics and error messages."""

    start_timeout_secs = 10.0
    """How long work waits for the connection started at pipeline start."""

    def __init__(
        self,
        *,
        model: str | None = None,
        name: str | None = None,
        reconnect_on_error: bool = True,
        ws_close_timeout: float | None = None,
        ws_send_timeout: float | None = None,
        reconnect_backoff_min_wait: float | None = None,
        reconnect_backoff_max_wait: float | None = None,
        metrics: Any = None,
        task_manager: Any = None,
        **kwargs: Any,
    ):
        """``reconnect_on_error``, ``ws_close_timeout`` and the options accepted and ignored:
        see the module docstring."""
        super().__init__(name=name, metrics=metrics, task_manager=task_manager, **kwargs)
        self._model_name = model
        self.reconnect_on_error = reconnect_on_error
        """False: a provider socket that dropped is not reconnected (the drop is reported)."""
        if ws_close_timeout is not None and ws_close_timeout <= 0:
            raise ConfigurationError(f"{type(self).__name__}: ws_close_timeout must be > 0")
        self.ws_close_timeout = ws_close_timeout
        """Seconds a provider socket waits for the provider's answer to its close (None: 2)."""
        ignored = {
            "ws_send_timeout": (ws_send_timeout, "the socket's ping timeout drops a stuck peer"),
            "reconnect_backoff_min_wait": (reconnect_backoff_min_wait, _BACKOFF),
            "reconnect_backoff_max_wait": (reconnect_backoff_max_wait, _BACKOFF),
        }
        for option, (value, reason) in ignored.items():
            if value is not None:
                warn_ignored_option(self, option, reason)
        self._start_task: asyncio.Task[Any] | None = None
        self._ready: asyncio.Event | None = None
        self._start_error: str | None = None
        self._in_sample_rate = 16000
        self._out_sample_rate = 16000
        self._report_only_initial_ttfb = False
        self._usage_metrics = False
        self._ttfb_reported = False
        self._ttfb_start: float | None = None
        self._processing_start: float | None = None
        self._open_sockets = 0

    # ------------------------------------------------------------------ properties

    @property
    def model_name(self) -> str | None:
        return self._model_name

    def set_model_name(self, model: str) -> None:
        self._model_name = model

    @property
    def usage_metrics_enabled(self) -> bool:
        """``enable_metrics`` and ``enable_usage_metrics``: report tokens/characters used."""
        return self._usage_metrics

    @property
    def sample_rate(self) -> int:
        """The rate this service produces (TTS) or consumes (STT) audio at."""
        return self._out_sample_rate

    # ------------------------------------------------------------------ metadata

    def service_metadata_frame(self) -> ServiceMetadataFrame | None:
        """The frame describing this service to the processors after it (None: nothing)."""
        return None

    async def broadcast_service_metadata(self) -> None:
        """Broadcast :meth:`service_metadata_frame` both ways, if there is one."""
        frame = self.service_metadata_frame()
        if frame is not None:
            await self.broadcast_frame_instance(frame)

    # ------------------------------------------------------------------ lifecycle hooks

    async def start(self, frame: StartFrame) -> None:
        """Connect/prepare. Runs in a background task right after the StartFrame was pushed."""

    async def stop(self, frame: EndFrame) -> None:
        """Disconnect gracefully (after everything before the EndFrame was handled)."""
        await self.disconnect()

    async def cancel(self, frame: CancelFrame) -> None:
        """Disconnect now."""
        await self.disconnect()

    async def disconnect(self) -> None:
        """Release the provider connection; idempotent (runs on end, cancel and cleanup)."""

    async def cleanup(self) -> None:
        await super().cleanup()
        await self.disconnect()
        await self.wait_for_event_handlers(timeout=1.0)  # e.g. on_disconnected, just fired

    # ------------------------------------------------------------------ connection events

    async def socket_connected(self) -> None:
        """A provider socket of this service opened (see the module docstring)."""
        self._open_sockets += 1
        if self._open_sockets == 1:
            await self._call_event_handler("on_connected")

    async def socket_disconnected(self) -> None:
        """A provider socket of this service that had opened closed or was dropped."""
        if self._open_sockets == 0:
            return
        self._open_sockets -= 1
        if self._open_sockets == 0:
            await self._call_event_handler("on_disconnected")

    async def socket_connection_error(self, error: str) -> None:
        """Connecting a provider socket of this service failed."""
        await self._call_event_handler("on_connection_error", error)

    async def _start_service(self, frame: StartFrame) -> None:
        self._in_sample_rate = frame.audio_in_sample_rate
        self._out_sample_rate = frame.audio_out_sample_rate
        self._report_only_initial_ttfb = frame.report_only_initial_ttfb
        self._usage_metrics = frame.enable_metrics and frame.enable_usage_metrics
        self._ready = asyncio.Event()
        self._start_task = self.create_task(self._run_start(frame), "start")

    async def _run_start(self, frame: StartFrame) -> None:
        try:
            await self.start(frame)
        except asyncio.CancelledError:
            raise
        except ServiceAuthError as exc:
            self._start_error = str(exc)
            await self.report_error(str(exc), fatal=True, reason="auth")
        except Exception as exc:
            self._start_error = f"{self}: could not start: {type(exc).__name__}: {exc}"
            await self.report_error(self._start_error, reason="start")
        finally:
            if self._ready is not None:
                self._ready.set()

    def _starting(self) -> bool:
        """``start()`` is under way: the pipeline started and it has not finished or failed."""
        return self._ready is not None and not self._ready.is_set()

    async def wait_ready(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until ``start()`` finished (or failed); False on timeout or before StartFrame."""
        if self._ready is None:
            return False
        if self._ready.is_set():
            return self._start_error is None
        try:
            async with asyncio.timeout(timeout or self.start_timeout_secs):
                await self._ready.wait()
        except TimeoutError:
            return False
        return self._start_error is None

    async def _abandon_start(self) -> None:
        """Stop a start still under way. A task cancelled before it ran never reaches its
        ``finally``, so the ready event is set here: nothing waits on a start that is over."""
        await cancel_and_wait(self._start_task)
        if self._ready is not None:
            self._ready.set()

    async def _stop_service(self, frame: EndFrame) -> None:
        await self._abandon_start()
        try:
            async with asyncio.timeout(5.0):
                await self.stop(frame)
        except TimeoutError:
            logger.warning("%s: stop timed out", self)
        except Exception:
            logger.exception("%s: stop failed", self)

    async def _cancel_service(self, frame: CancelFrame) -> None:
        await self._abandon_start()
        try:
            async with asyncio.timeout(2.0):
                await self.cancel(frame)
        except TimeoutError:
            logger.warning("%s: cancel timed out", self)
        except Exception:
            logger.exception("%s: cancel failed", self)

    async def handle_lifecycle(self, frame: Frame, direction: FrameDirection) -> bool:
        """Start/End/Cancel handling shared by all services. True if ``frame`` was handled.

        A ``ServiceSwitcherRequestMetadataFrame`` is answered here but not consumed (False):
        the service passes it on, and its switcher drops it."""
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self.broadcast_service_metadata()
            await self._start_service(frame)
            return True
        if isinstance(frame, EndFrame):
            await self._stop_service(frame)
            await self.push_frame(frame, direction)
            return True
        if isinstance(frame, CancelFrame):
            await self._cancel_service(frame)
            await self.push_frame(frame, direction)
            return True
        if isinstance(frame, ServiceSwitcherRequestMetadataFrame) and frame.service is self:
            await self.broadcast_service_metadata()
        return False

    # ------------------------------------------------------------------ errors

    async def report_error(
        self,
        message: str,
        *,
        fatal: bool = False,
        reason: str = "error",
        category: ErrorCategory | None = None,
    ) -> None:
        """Count, and send an ErrorFrame upstream (the task logs it once; fatal ones end the
        call). Its ``category`` is ``category``, else worked out from the HTTP status the
        message quotes or from ``reason``."""
        SERVICE_ERRORS.inc(service=type(self).__name__, kind=self.kind, reason=reason)
        if category is None:
            category = classify_service_error(message, reason)
        error: ErrorFrame = (
            FatalErrorFrame(error=message, category=category)
            if fatal
            else ErrorFrame(error=message, category=category)
        )
        await self.push_error(error)

    # ------------------------------------------------------------------ metrics

    def start_ttfb_metrics(self) -> MetricMark:
        """Mark the moment a request left (only the first mark counts until it is stopped).

        Marks at once; the result may be awaited (Pipecat's ``await self.start_ttfb_metrics()``)
        or ignored."""
        if self._ttfb_start is None:
            self._ttfb_start = self.clock.now()
        return METRIC_MARKED

    def reset_ttfb_metrics(self) -> None:
        self._ttfb_start = None

    async def cancel_ttfb_metrics(self) -> None:
        """Pipecat's: drop the TTFB measurement under way without reporting it."""
        self.reset_ttfb_metrics()

    async def start_processing_metrics(self, *, start_time: float | None = None) -> None:
        """Pipecat's: one request's processing starts (``start_time``: a ``time.time()``
        value, as Pipecat's; now by default)."""
        self._processing_start = self._on_clock(start_time)

    async def stop_processing_metrics(self, *, end_time: float | None = None) -> None:
        """Pipecat's: the request started by :meth:`start_processing_metrics` is done; its
        duration goes out as ``ProcessingMetricsData`` (with metrics on)."""
        start, self._processing_start = self._processing_start, None
        if start is None:
            return
        value = max(0.0, self._on_clock(end_time) - start)
        await self.push_metrics(
            ProcessingMetricsData(processor=self.name, model=self._model_name, value=value)
        )

    async def stop_all_metrics(self) -> None:
        """Pipecat's: end the measurements under way. A TTFB measurement is dropped, not
        reported (the services measure their latency themselves)."""
        self.reset_ttfb_metrics()
        await self.stop_processing_metrics()

    def _on_clock(self, wall_time: float | None) -> float:
        """A ``time.time()`` value (None: now) on this processor's clock."""
        now = self.clock.now()
        return now if wall_time is None else now - (time.time() - wall_time)

    async def stop_ttfb_metrics(self) -> float | None:
        """Record the time since :meth:`start_ttfb_metrics`; returns it (None if not started)."""
        if self._ttfb_start is None:
            return None
        value = self.clock.now() - self._ttfb_start
        self._ttfb_start = None
        note_service_ttfb(self.kind, value, self._model_name, type(self).__name__)
        SERVICE_TTFB.observe(
            value, service=type(self).__name__, kind=self.kind, model=self._model_name or ""
        )
        if self._report_only_initial_ttfb and self._ttfb_reported:
            return value
        self._ttfb_reported = True
        await self.push_metrics(
            TTFBMetricsData(processor=self.name, model=self._model_name, value=value)
        )
        return value

    async def push_metrics(self, *data: MetricsData) -> None:
        if self.metrics_enabled:
            await self.push_frame(MetricsFrame(data=list(data)))
