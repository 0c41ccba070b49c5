"""Pipecat 1.x engine names: PipelineWorker, WorkerRunner, worker frames, observers, params."""

from __future__ import annotations

import asyncio
import time

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    CancelTaskFrame,
    CancelWorkerFrame,
    EndFrame,
    EndTaskFrame,
    EndWorkerFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    InterruptionWorkerFrame,
    StartFrame,
    StopFrame,
    StopWorkerFrame,
    TextFrame,
)
from callpipe.observers.base_observer import BaseObserver, FrameProcessed, FramePushed
from callpipe.pipeline.parallel_pipeline import ParallelPipeline
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.service_switcher import ServiceSwitcher
from callpipe.pipeline.task import PipelineTask
from callpipe.pipeline.worker import PipelineParams, PipelineWorker, ProcessorUnusablePolicy
from callpipe.processors.filters.identity_filter import IdentityFilter
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from callpipe.processors.frameworks.rtvi import RTVIProcessor
from callpipe.workers.runner import WorkerRunner

from .helpers import Recorder


class Pusher(FrameProcessor):
    """Pushes ``frame`` (in ``direction``) when it sees a TextFrame 'go'."""

    def __init__(self, frame: Frame, direction: FrameDirection) -> None:
        super().__init__()
        self.frame = frame
        self.direction = direction

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame) and frame.text == "go":
            await self.push_frame(self.frame, self.direction)
        else:
            await self.push_frame(frame, direction)


class Collecting(BaseObserver):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.pushed: list[FramePushed] = []
        self.processed: list[FrameProcessed] = []
        self.started = 0

    async def on_push_frame(self, data: FramePushed) -> None:
        self.pushed.append(data)

    async def on_process_frame(self, data: FrameProcessed) -> None:
        self.processed.append(data)

    async def on_pipeline_started(self) -> None:
        self.started += 1


def test_pipeline_task_is_a_pipeline_worker() -> None:
    task = PipelineTask(Pipeline([]))
    assert isinstance(task, PipelineWorker)
    assert issubclass(PipelineRunner, WorkerRunner)
    assert issubclass(EndTaskFrame, EndWorkerFrame)
    assert issubclass(CancelTaskFrame, CancelWorkerFrame)


def test_pipeline_params_take_the_1_14_options() -> None:
    params = PipelineParams(
        enable_heartbeats=True,
        heartbeats_period_secs=0.5,
        start_metadata={"tenant": "a"},
        send_initial_empty_metrics=False,
        enable_usage_metrics=True,
    )
    assert params.start_metadata == {"tenant": "a"}
    with pytest.raises(ValueError):
        PipelineParams(enable_heartbeat=True)  # type: ignore[call-arg]  # misspelt: refused


async def test_worker_runner_add_workers_then_run() -> None:
    rec = Recorder()
    worker = PipelineWorker(Pipeline([rec]), idle_timeout_secs=None)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await worker.queue_frames([TextFrame("a"), EndFrame()])
    await asyncio.wait_for(runner.run(), 5)
    assert [f.text for f in rec.seen if isinstance(f, TextFrame)] == ["a"]
    assert isinstance(worker.end_frame, EndFrame)
    assert worker.has_finished()


async def test_start_metadata_reaches_processors() -> None:
    seen: list[dict[str, object]] = []

    class Meta(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, StartFrame):
                seen.append(dict(frame.metadata))
            await self.push_frame(frame, direction)

    worker = PipelineWorker(
        Pipeline([Meta()]), params=PipelineParams(start_metadata={"k": 1}), idle_timeout_secs=None
    )
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(worker.run(), 5)
    assert seen == [{"k": 1}]


@pytest.mark.parametrize(
    ("request_frame", "expected"),
    [
        (EndWorkerFrame(reason="bye"), EndFrame),
        (StopWorkerFrame(), StopFrame),
        (CancelWorkerFrame(reason="now"), CancelFrame),
        (EndTaskFrame(reason="bye"), EndFrame),
    ],
)
@pytest.mark.parametrize("direction", [FrameDirection.UPSTREAM, FrameDirection.DOWNSTREAM])
async def test_worker_frames_end_the_worker_from_either_direction(
    request_frame: Frame, expected: type[Frame], direction: FrameDirection
) -> None:
    worker = PipelineWorker(Pipeline([Pusher(request_frame, direction)]), idle_timeout_secs=None)
    await worker.queue_frame(TextFrame("go"))
    await asyncio.wait_for(worker.run(), 5)
    assert type(worker.end_frame) is expected
    if isinstance(request_frame, EndWorkerFrame | CancelWorkerFrame):
        assert worker.end_frame.reason == request_frame.reason  # type: ignore[union-attr]


async def test_interruption_worker_frame_sends_an_interruption_down() -> None:
    rec = Recorder()
    worker = PipelineWorker(
        Pipeline([Pusher(InterruptionWorkerFrame(), FrameDirection.UPSTREAM), rec]),
        idle_timeout_secs=None,
    )
    await worker.queue_frames([TextFrame("go"), EndFrame()])
    await asyncio.wait_for(worker.run(), 5)
    assert any(isinstance(f, InterruptionFrame) for f in rec.seen)


async def test_base_observers_see_pushes_and_processing() -> None:
    every = Collecting()
    first_only = Collecting(observe_every_push=False)
    a, b = Recorder(name="a"), Recorder(name="b")
    worker = PipelineWorker(Pipeline([a, b]), observers=[every], idle_timeout_secs=None)
    worker.add_observer(first_only)
    text = TextFrame("x")
    await worker.queue_frames([text, EndFrame()])
    await asyncio.wait_for(worker.run(), 5)
    hops = [(d.source.name, d.destination.name) for d in every.pushed if d.frame is text]
    assert ("a", "b") in hops and len(hops) >= 3  # through the pipeline's own source/sink too
    assert [d.first_push for d in every.pushed if d.frame is text][0] is True
    assert not all(d.first_push for d in every.pushed if d.frame is text)
    assert [d for d in first_only.pushed if d.frame is text] != []
    assert all(d.first_push for d in first_only.pushed)
    assert {d.processor.name for d in every.processed if d.frame is text} >= {"a", "b"}
    assert every.started == 1 and first_only.started == 1


async def test_a_slow_observer_does_not_hold_the_pipeline() -> None:
    class Slow(BaseObserver):
        async def on_push_frame(self, data: FramePushed) -> None:
            await asyncio.sleep(10)

    worker = PipelineWorker(Pipeline([Recorder()]), observers=[Slow()], idle_timeout_secs=None)
    await worker.queue_frames([TextFrame("x")] * 20 + [EndFrame()])
    started = time.monotonic()
    await asyncio.wait_for(worker.run(), 8)
    assert time.monotonic() - started < 5


async def test_no_observer_means_no_observer_work_in_processors() -> None:
    rec = Recorder()
    worker = PipelineWorker(Pipeline([rec]), idle_timeout_secs=None)
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(worker.run(), 5)
    assert rec._observers == () and rec._process_observers == ()
    assert rec._push_hooks is False and rec._process_hooks is False


async def test_reached_filters_fire_only_for_chosen_types() -> None:
    worker = PipelineWorker(Pipeline([Recorder()]), idle_timeout_secs=None)
    worker.set_reached_downstream_filter((TextFrame,))
    got: list[Frame] = []

    @worker.event_handler("on_frame_reached_downstream")
    async def reached(w: PipelineWorker, frame: Frame) -> None:
        got.append(frame)

    await worker.queue_frames([TextFrame("a"), EndFrame()])
    await asyncio.wait_for(worker.run(), 5)
    assert [type(f) for f in got] == [TextFrame]


async def test_heartbeats_flow_when_enabled() -> None:
    from callpipe.frames.frames import HeartbeatFrame

    rec = Recorder()
    worker = PipelineWorker(
        Pipeline([rec]),
        params=PipelineParams(enable_heartbeats=True, heartbeats_period_secs=0.02),
        idle_timeout_secs=None,
    )
    run = asyncio.create_task(worker.run())
    await asyncio.sleep(0.15)
    await worker.end(reason="done")
    await asyncio.wait_for(run, 5)
    assert sum(isinstance(f, HeartbeatFrame) for f in rec.seen) >= 3


async def test_idle_timeout_without_cancel_keeps_running() -> None:
    worker = PipelineWorker(
        Pipeline([Recorder()]), idle_timeout_secs=0.05, cancel_on_idle_timeout=False
    )
    fired = asyncio.Event()

    @worker.event_handler("on_idle_timeout")
    async def idle(w: PipelineWorker) -> None:
        fired.set()

    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(fired.wait(), 5)
    assert not worker.has_finished()
    await worker.cancel()
    await asyncio.wait_for(run, 5)
    assert isinstance(worker.end_frame, CancelFrame)


@pytest.mark.parametrize("cancel_runner", [True, False])
async def test_an_idle_worker_cancels_its_runner_unless_told_not_to(cancel_runner: bool) -> None:
    idle = PipelineWorker(
        Pipeline([Recorder()]),
        idle_timeout_secs=0.05,
        cancel_runner_on_idle_timeout=cancel_runner,
    )
    main = PipelineWorker(Pipeline([Recorder()]), idle_timeout_secs=None)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(main, idle)
    run = asyncio.create_task(runner.run())
    for _ in range(200):
        if idle.has_finished() and (main.has_finished() or not cancel_runner):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert idle.cancels_runner is cancel_runner
    assert main.has_finished() is cancel_runner
    if not cancel_runner:
        await main.cancel()
    await asyncio.wait_for(run, 5)
    assert isinstance(main.end_frame, CancelFrame)


def test_pipecat_1_14_worker_options_are_accepted_or_refused_plainly() -> None:
    resources = object()
    with pytest.warns(DeprecationWarning, match="app_resources"):
        worker = PipelineWorker(
            Pipeline([Recorder()]),
            tool_resources=resources,
            capabilities={"voice": True},
            handle_flush_frame=True,
            rtvi_processor=None,
            task_manager=None,
        )
    assert worker.app_resources is resources
    assert worker.capabilities == {"voice": True}
    with pytest.raises(ConfigurationError, match="bus"):
        PipelineWorker(Pipeline([Recorder()]), bridged=("voice",))
    with pytest.raises(ConfigurationError, match="bus"):
        PipelineTask(Pipeline([Recorder()]), active=False)


def test_task_rtvi_takes_event_handlers_and_never_fires_on_a_call() -> None:
    given = RTVIProcessor()
    assert PipelineTask(Pipeline([Recorder()]), rtvi_processor=given).rtvi is given
    task = PipelineTask(Pipeline([Recorder()]))
    rtvi = task.rtvi
    assert task.rtvi is rtvi  # made once

    @rtvi.event_handler("on_client_ready")
    async def ready(processor: RTVIProcessor) -> None:
        raise AssertionError("no RTVI client on a phone call")

    with pytest.raises(ConfigurationError, match="RTVI"):
        _ = PipelineTask(Pipeline([Recorder()]), enable_rtvi=False).rtvi


# ---------------------------------------------------------------------- behaviour bugs


class SwallowCancel(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, CancelFrame):
            await self.push_frame(frame, direction)


async def test_runner_returns_when_a_processor_swallows_the_cancel() -> None:
    worker = PipelineWorker(
        Pipeline([SwallowCancel()]), idle_timeout_secs=None, cancel_timeout_secs=0.3
    )
    timeouts: list[Frame] = []

    @worker.event_handler("on_pipeline_timeout")
    async def timed_out(w: PipelineWorker, frame: Frame) -> None:
        timeouts.append(frame)

    run = asyncio.create_task(PipelineRunner(handle_sigint=False).run(worker))
    await asyncio.sleep(0.05)
    await worker.cancel()
    await asyncio.wait_for(run, 3)
    assert [type(f) for f in timeouts] == [CancelFrame]
    assert worker.has_finished()


async def test_runner_returns_when_a_processor_blocks_on_the_cancel() -> None:
    class Blocks(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, CancelFrame):
                await asyncio.Event().wait()
            await self.push_frame(frame, direction)

    worker = PipelineWorker(Pipeline([Blocks()]), idle_timeout_secs=None, cancel_timeout_secs=0.3)
    run = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    await worker.cancel()
    await asyncio.wait_for(run, 3)


async def test_setup_exception_becomes_a_reported_error_not_an_escape() -> None:
    class BadSetup(Recorder):
        async def setup(self, setup: FrameProcessorSetup) -> None:
            await super().setup(setup)
            raise RuntimeError("no credentials")

    rec = Recorder()
    worker = PipelineWorker(Pipeline([BadSetup(), rec]), idle_timeout_secs=None)
    errors: list[ErrorFrame] = []

    @worker.event_handler("on_pipeline_error")
    async def on_error(w: PipelineWorker, frame: ErrorFrame) -> None:
        errors.append(frame)

    await asyncio.wait_for(PipelineRunner(handle_sigint=False).run(worker), 5)
    assert len(errors) == 1 and errors[0].fatal and "no credentials" in errors[0].error
    assert isinstance(worker.end_frame, CancelFrame)
    assert not any(isinstance(f, TextFrame) for f in rec.seen)


async def test_each_processor_is_set_up_and_cleaned_up_once_however_deep() -> None:
    class Counts(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.setups = 0
            self.cleanups = 0

        async def setup(self, setup: FrameProcessorSetup) -> None:
            await super().setup(setup)
            self.setups += 1

        async def cleanup(self) -> None:
            self.cleanups += 1
            await super().cleanup()

    top, inner, branch, held = Counts(), Counts(), Counts(), Counts()
    pipeline = Pipeline(
        [
            top,
            Pipeline([inner]),
            ParallelPipeline([branch], [IdentityFilter()]),
            ServiceSwitcher(services=[held, IdentityFilter()]),
        ]
    )
    worker = PipelineWorker(pipeline, idle_timeout_secs=None)
    await worker.queue_frames([EndFrame()])
    await asyncio.wait_for(PipelineRunner(handle_sigint=False).run(worker), 5)
    counted = (top, inner, branch, held)
    assert [(c.setups, c.cleanups) for c in counted] == [(1, 1)] * 4


async def test_the_processor_whose_setup_failed_is_named_even_when_nested() -> None:
    class BadSetup(Recorder):
        async def setup(self, setup: FrameProcessorSetup) -> None:
            await super().setup(setup)
            raise RuntimeError("no credentials")

    bad = BadSetup()
    worker = PipelineWorker(Pipeline([Recorder(), Pipeline([bad])]), idle_timeout_secs=None)
    errors: list[ErrorFrame] = []

    @worker.event_handler("on_pipeline_error")
    async def on_error(w: PipelineWorker, frame: ErrorFrame) -> None:
        errors.append(frame)

    await asyncio.wait_for(PipelineRunner(handle_sigint=False).run(worker), 5)
    assert [e.processor for e in errors] == [bad]


async def test_a_setup_that_never_finishes_times_out() -> None:
    class Hangs(Recorder):
        async def setup(self, setup: FrameProcessorSetup) -> None:
            await super().setup(setup)
            await asyncio.Event().wait()

    worker = PipelineWorker(Pipeline([Hangs()]), idle_timeout_secs=None, setup_timeout_secs=0.1)
    fired: list[str] = []

    @worker.event_handler("on_setup_timeout")
    async def on_setup_timeout(w: PipelineWorker) -> None:
        fired.append("setup")

    await asyncio.wait_for(worker.run(), 3)
    assert fired == ["setup"] and isinstance(worker.end_frame, CancelFrame)


async def test_a_start_frame_that_never_gets_through_times_out() -> None:
    class BlocksStart(Recorder):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            if isinstance(frame, StartFrame):
                await asyncio.Event().wait()
            await super().process_frame(frame, direction)

    worker = PipelineWorker(
        Pipeline([BlocksStart()]), idle_timeout_secs=None, start_timeout_secs=0.1
    )
    timeouts: list[Frame] = []

    @worker.event_handler("on_pipeline_timeout")
    async def on_timeout(w: PipelineWorker, frame: Frame) -> None:
        timeouts.append(frame)

    await asyncio.wait_for(worker.run(), 3)
    assert [type(f) for f in timeouts] == [StartFrame]
    assert worker.has_finished()


class FailsForGood(Recorder):
    """On TextFrame('go') reports an error it cannot recover from (a rejected API key)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, TextFrame) and frame.text == "go":
            await self.push_error("invalid API key", force_treat_as_permanent=True)
            await self.push_error("invalid API key", force_treat_as_permanent=True)
            return
        await super().process_frame(frame, direction)


@pytest.mark.parametrize(
    ("policy", "ends_with"),
    [
        (ProcessorUnusablePolicy.END, EndFrame),
        (ProcessorUnusablePolicy.CANCEL, CancelFrame),
        (ProcessorUnusablePolicy.CONTINUE, None),
    ],
)
async def test_processor_unusable_policy(
    policy: ProcessorUnusablePolicy, ends_with: type[Frame] | None
) -> None:
    failing = FailsForGood()
    worker = PipelineWorker(
        Pipeline([failing]), idle_timeout_secs=None, processor_unusable_policy=policy
    )
    errors: list[ErrorFrame] = []

    @worker.event_handler("on_pipeline_error")
    async def on_error(w: PipelineWorker, frame: ErrorFrame) -> None:
        errors.append(frame)

    run = asyncio.create_task(worker.run())
    await worker.queue_frame(TextFrame("go"))
    await asyncio.sleep(0.1)
    assert not failing.is_usable and len(errors) == 2
    assert errors[0].processor is failing and "invalid API key" in errors[0].error
    if ends_with is None:
        assert not worker.has_finished()
        await worker.cancel()
    await asyncio.wait_for(run, 5)
    if ends_with is not None:
        assert type(worker.end_frame) is ends_with


async def test_observers_cost_only_the_hooks_they_override() -> None:
    class PushesOnly(BaseObserver):
        async def on_push_frame(self, data: FramePushed) -> None:
            pass

    class StartOnly(BaseObserver):
        def __init__(self) -> None:
            super().__init__()
            self.started = False

        async def on_pipeline_started(self) -> None:
            self.started = True

    rec = Recorder()
    start_only = StartOnly()
    worker = PipelineWorker(
        Pipeline([rec]), observers=[PushesOnly(), start_only], idle_timeout_secs=None
    )
    run = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    assert len(rec._observers) == 1 and rec._process_observers == ()
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(run, 5)
    assert start_only.started


class ClockProbe(FrameProcessor):
    """Reads its clock while the pipeline runs."""

    def __init__(self) -> None:
        super().__init__()
        self.readings: list[tuple[object, float, asyncio.AbstractEventLoop]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):
            self.readings.append((self.clock, self.clock.now(), asyncio.get_running_loop()))
        await self.push_frame(frame, direction)


async def test_processors_read_the_loop_clock_without_looking_the_loop_up() -> None:
    from callpipe.clock import DEFAULT_CLOCK, BoundLoopClock

    probe = ClockProbe()
    worker = PipelineWorker(Pipeline([probe]), idle_timeout_secs=None)
    await worker.queue_frames([TextFrame("t"), EndFrame()])
    await asyncio.wait_for(worker.run(), 5)
    [(clock, reading, loop)] = probe.readings
    assert isinstance(clock, BoundLoopClock) and clock.loop is loop
    assert abs(reading - loop.time()) < 1.0
    assert DEFAULT_CLOCK.now() >= reading  # the shared default itself is unchanged


async def test_a_clock_given_to_the_worker_is_kept() -> None:
    class Fixed:
        def now(self) -> float:
            return 42.0

        async def sleep_until(self, deadline: float) -> None:
            await asyncio.sleep(0)

        async def sleep(self, seconds: float) -> None:
            await asyncio.sleep(0)

    probe = ClockProbe()
    worker = PipelineWorker(Pipeline([probe]), idle_timeout_secs=None, clock=Fixed())
    await worker.queue_frames([TextFrame("t"), EndFrame()])
    await asyncio.wait_for(worker.run(), 5)
    assert [reading for _, reading, _ in probe.readings] == [42.0]


async def test_a_processor_reaches_its_worker_and_runner() -> None:
    class Reader(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, StartFrame):
                seen.append((self.pipeline_worker, self.worker_runner))
            await self.push_frame(frame, direction)

    seen: list[tuple[object, object]] = []
    reader = Reader()
    with pytest.raises(RuntimeError, match="not set up"):
        _ = reader.processor_setup
    assert reader.pipeline_worker is None and reader.worker_runner is None
    worker = PipelineWorker(Pipeline([reader]), app_resources={"k": 1})
    runner = WorkerRunner(handle_sigint=False)
    await worker.queue_frame(EndFrame())
    await runner.add_workers(worker)
    await asyncio.wait_for(runner.run(), 5)
    assert seen == [(worker, runner)]
    assert reader.processor_setup.pipeline_worker is worker
    with pytest.warns(DeprecationWarning, match="pipeline_worker"):
        assert reader.pipeline_task is worker


async def test_a_processor_set_up_by_hand_as_in_pipecat() -> None:
    """A custom processor's unit test written for Pipecat 1.14 passes its setup fields."""
    processor = IdentityFilter()
    await processor.setup(
        FrameProcessorSetup(
            task_manager=object(),
            audio_in_sample_rate=8000,
            enable_metrics=True,
            observer=None,
        )
    )
    assert processor.pipeline_worker is None
    assert processor.processor_setup.audio_in_sample_rate == 8000
