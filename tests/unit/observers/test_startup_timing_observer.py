"""StartupTimingObserver on a real worker, with a clock the processors move as they work."""

from __future__ import annotations

from typing import Any

import pytest

from callpipe.frames.frames import (
    BotConnectedFrame,
    ClientConnectedFrame,
    Frame,
    StartFrame,
)
from callpipe.observers.service_metrics_observer import ServiceMetricsObserver
from callpipe.observers.startup_timing_observer import (
    StartupTimingObserver,
    StartupTimingReport,
    TransportTimingReport,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineWorker
from callpipe.pipeline.worker_observer import WorkerObserver
from callpipe.processors.frame_processor import FrameDirection, FrameProcessorSetup

from ..pipeline.helpers import Recorder
from .helpers import ManualClock, drive


class Connects(Recorder):
    """Spends ``secs`` of pipeline clock in setup() (opening a connection)."""

    def __init__(self, clock: ManualClock, secs: float, name: str) -> None:
        super().__init__(name=name)
        self._manual, self._secs = clock, secs

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._manual.advance(self._secs)


class Starts(Recorder):
    """Spends ``secs`` of pipeline clock on the StartFrame."""

    def __init__(self, clock: ManualClock, secs: float, name: str) -> None:
        super().__init__(name=name)
        self._manual, self._secs = clock, secs

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, StartFrame):
            self._manual.advance(self._secs)
        await super().process_frame(frame, direction)


def reports(observer: StartupTimingObserver, event: str) -> list[Any]:
    got: list[Any] = []
    observer.add_event_handler(event, lambda o, report: got.append(report))
    return got


async def test_reports_setup_and_start_per_processor() -> None:
    clock = ManualClock()
    observer = StartupTimingObserver()
    got = reports(observer, "on_startup_timing_report")
    pipeline = Pipeline(
        [Connects(clock, 0.5, "stt"), Starts(clock, 0.2, "llm"), Connects(clock, 0.25, "tts")]
    )
    worker = PipelineWorker(pipeline, observers=[observer], clock=clock, idle_timeout_secs=None)
    await drive(worker, [], clock)
    [report] = got
    assert isinstance(report, StartupTimingReport)
    # Only the pipeline's own processors: the worker's source/sink and Pipeline are left out.
    assert [t.processor_name for t in report.processor_timings] == ["stt", "llm", "tts"]
    stt, llm, tts = report.processor_timings
    assert (stt.setup_duration_secs, stt.start_duration_secs) == pytest.approx((0.5, 0.0))
    assert (llm.setup_duration_secs, llm.start_duration_secs) == pytest.approx((0.0, 0.2))
    assert (tts.setup_duration_secs, tts.start_duration_secs) == pytest.approx((0.25, 0.0))
    assert tts.duration_secs == pytest.approx(0.25)
    assert tts.start_offset_secs == pytest.approx(0.2)  # the StartFrame waited for the llm
    # Containers set their children up too, so the phase is at least every setup once.
    assert report.setup_phase_secs >= 0.75
    assert report.start_phase_secs == pytest.approx(0.2)
    assert report.total_duration_secs == pytest.approx(report.setup_phase_secs + 0.2)
    assert report.warmup is None


async def test_processor_types_limit_the_report() -> None:
    clock = ManualClock()
    observer = StartupTimingObserver(processor_types=(Starts,))
    got = reports(observer, "on_startup_timing_report")
    pipeline = Pipeline([Connects(clock, 0.5, "stt"), Starts(clock, 0.2, "llm")])
    worker = PipelineWorker(pipeline, observers=[observer], clock=clock, idle_timeout_secs=None)
    await drive(worker, [], clock)
    [report] = got
    assert [t.processor_name for t in report.processor_timings] == ["llm"]
    # The filtered-out processor's setup still held the pipeline up.
    assert report.setup_phase_secs >= 0.5
    assert report.processor_timings[0].setup_duration_secs == 0.0


async def test_transport_timing_at_the_first_client_connection() -> None:
    clock = ManualClock()
    observer = StartupTimingObserver()
    got = reports(observer, "on_transport_timing_report")
    worker = PipelineWorker(
        Pipeline([Recorder(name="rec")]), observers=[observer], clock=clock, idle_timeout_secs=None
    )
    await drive(
        worker,
        [1.5, BotConnectedFrame(), 0.5, ClientConnectedFrame(), ClientConnectedFrame()],
        clock,
    )
    [report] = got
    assert isinstance(report, TransportTimingReport)
    assert report.bot_connected_secs == pytest.approx(1.5)
    assert report.client_connected_secs == pytest.approx(2.0)


def test_the_worker_times_setups_only_for_observers_that_want_them() -> None:
    assert WorkerObserver([StartupTimingObserver()]).wants_setup_timing
    assert not WorkerObserver([ServiceMetricsObserver()]).wants_setup_timing
    assert not WorkerObserver([]).wants_setup_timing
