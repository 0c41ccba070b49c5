"""Pipecat 1.x ``StartupTimingObserver``: what each processor cost the call before it could start.

Two phases make up a pipeline's startup. First the worker sets every processor up (this is where
services open their connections); the worker times each ``setup()`` for observers that ask for it,
and for no one else. Then the ``StartFrame`` travels the pipeline; a processor's share of that is
the time from the frame reaching it to the processor passing it on.

Events:

- ``on_startup_timing_report(observer, report)``: once, when the StartFrame has gone through
  every processor, with a :class:`StartupTimingReport`.
- ``on_transport_timing_report(observer, report)``: once, at the first ``ClientConnectedFrame``,
  with a :class:`TransportTimingReport` (seconds from the worker starting). callpipe's telephony
  transports do not push ``ClientConnectedFrame`` (a phone call is connected before the
  pipeline runs), so with them this event does not fire.

Differences from Pipecat: callpipe's worker sets processors up one after another, not all at
once, so ``setup_phase_secs`` is their sum rather than the longest one. Timings come from the
pipeline clock. Like any observer it sees every frame for as long as it is attached; to stop
that after startup, remove it in the report handler
(``await worker.remove_observer(observer)``).

Example::

    observer = StartupTimingObserver()

    @observer.event_handler("on_startup_timing_report")
    async def on_report(observer, report):
        for timing in report.processor_timings:
            print(timing.processor_name, round(timing.duration_secs, 3))

    worker = PipelineWorker(pipeline, observers=[observer])
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from callpipe.frames.frames import BotConnectedFrame, ClientConnectedFrame, StartFrame
from callpipe.observers.base_observer import BaseObserver, FramePushed, ProcessorSetUp
from callpipe.pipeline.pipeline import Pipeline, PipelineSink, PipelineSource
from callpipe.processors.frame_processor import FrameProcessor

_NS = 1_000_000_000

_PLUMBING: tuple[type[FrameProcessor], ...] = (Pipeline, PipelineSource, PipelineSink)
"""The worker's and pipelines' own processors, left out of the report unless asked for."""


class ProcessorStartupTiming(BaseModel):
    """One processor's startup cost.

    ``setup_duration_secs``: its ``setup()``; ``start_duration_secs``: from the StartFrame
    reaching it to it passing the frame on; ``duration_secs``: both together.
    ``start_offset_secs``: when the StartFrame reached it, counted from when it reached the
    first processor.
    """

    processor_name: str
    start_offset_secs: float
    duration_secs: float
    setup_duration_secs: float
    start_duration_secs: float = 0.0


class StartupWarmupTiming(BaseModel):
    """Kept for Pipecat code that names it (deprecated there); never reported."""

    duration_secs: float
    blocking_duration_secs: float


class StartupTimingReport(BaseModel):
    """The whole startup: ``total_duration_secs`` is ``setup_phase_secs`` (setting every
    processor up) followed by ``start_phase_secs`` (the StartFrame's trip); ``start_time`` is
    the Unix time the worker began. ``processor_timings`` are in pipeline order."""

    start_time: float
    total_duration_secs: float
    setup_phase_secs: float = 0.0
    start_phase_secs: float = 0.0
    processor_timings: list[ProcessorStartupTiming] = Field(default_factory=list)
    warmup: StartupWarmupTiming | None = None


class TransportTimingReport(BaseModel):
    """Seconds from the worker starting to the bot joining a room (``BotConnectedFrame``, SFU
    transports only) and to the first client connecting (``ClientConnectedFrame``)."""

    start_time: float
    bot_connected_secs: float | None = None
    client_connected_secs: float | None = None


class StartupTimingObserver(BaseObserver):
    """Reports per-processor startup timings once (see the module docstring).

    ``processor_types``: time only processors of these types (default: every processor except
    the worker's and pipelines' own plumbing).
    """

    def __init__(
        self,
        *,
        processor_types: tuple[type[FrameProcessor], ...] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._processor_types = processor_types
        self._setup_secs: dict[FrameProcessor, float] = {}
        self._setup_end_ns = 0
        self._start_frame_id: int | None = None
        self._first_arrival_ns = 0
        self._arrivals: dict[
            FrameProcessor, int
        ] = {}  # processor -> when the StartFrame reached it
        self._timings: list[ProcessorStartupTiming] = []
        self._last_start_push_ns = 0
        self._reported = False
        self._bot_connected_secs: float | None = None
        self._transport_reported = False
        self._register_event_handler("on_startup_timing_report")
        self._register_event_handler("on_transport_timing_report")

    def _tracked(self, processor: FrameProcessor) -> bool:
        if self._processor_types is not None:
            return isinstance(processor, self._processor_types)
        return not isinstance(processor, _PLUMBING)

    async def on_processor_setup(self, data: ProcessorSetUp) -> None:
        if self._reported:
            return
        # Every setup holds the phase open, tracked or not.
        self._setup_end_ns = max(self._setup_end_ns, data.finished_at_ns)
        if self._tracked(data.processor):
            seconds = (data.finished_at_ns - data.started_at_ns) / _NS
            self._setup_secs[data.processor] = seconds

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, BotConnectedFrame):
            if self._bot_connected_secs is None:
                self._bot_connected_secs = data.timestamp / _NS
            return
        if isinstance(frame, ClientConnectedFrame):
            await self._report_transport(data.timestamp)
            return
        if self._reported or not isinstance(frame, StartFrame):
            return
        if self._start_frame_id is None:
            self._start_frame_id = frame.id
            self._first_arrival_ns = data.timestamp
        elif frame.id != self._start_frame_id:
            return
        self._last_start_push_ns = max(self._last_start_push_ns, data.timestamp)
        # The frame leaves ``source`` and reaches ``destination`` at the same moment.
        arrived = self._arrivals.pop(data.source, None)
        if arrived is not None:
            start_secs = (data.timestamp - arrived) / _NS
            setup_secs = self._setup_secs.get(data.source, 0.0)
            self._timings.append(
                ProcessorStartupTiming(
                    processor_name=data.source.name,
                    start_offset_secs=(arrived - self._first_arrival_ns) / _NS,
                    duration_secs=setup_secs + start_secs,
                    setup_duration_secs=setup_secs,
                    start_duration_secs=start_secs,
                )
            )
        if self._tracked(data.destination) and data.destination not in self._arrivals:
            self._arrivals[data.destination] = data.timestamp

    async def on_pipeline_started(self) -> None:
        if self._reported or not self._timings:
            return
        self._reported = True
        total = self._last_start_push_ns / _NS
        setup = min(self._setup_end_ns / _NS, total)
        report = StartupTimingReport(
            start_time=time.time() - total,
            total_duration_secs=total,
            setup_phase_secs=setup,
            start_phase_secs=total - setup,
            processor_timings=self._timings,
        )
        await self._call_event_handler("on_startup_timing_report", report)

    async def _report_transport(self, timestamp_ns: int) -> None:
        if self._transport_reported:
            return
        self._transport_reported = True
        client_secs = timestamp_ns / _NS
        report = TransportTimingReport(
            start_time=time.time() - client_secs,
            bot_connected_secs=self._bot_connected_secs,
            client_connected_secs=client_secs,
        )
        await self._call_event_handler("on_transport_timing_report", report)
