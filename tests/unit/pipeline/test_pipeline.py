"""Frame ordering, system-frame priority, interruptions, lifecycle, errors and nesting."""

from __future__ import annotations

import asyncio

import pytest

from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputDTMFFrame,
    InterruptionFrame,
    KeypadEntry,
    TextFrame,
    UserStartedSpeakingFrame,
)
from callpipe.pipeline.parallel_pipeline import ParallelPipeline
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_clock import run_virtual

from .helpers import Recorder, Slow, Suffixer


def texts(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TextFrame)]


async def test_data_frames_keep_order_through_several_processors() -> None:
    chain = Pipeline([Suffixer("a"), Suffixer("b"), Suffixer("c")])
    down, _ = await run_test(chain, [TextFrame(str(i)) for i in range(50)])
    assert texts(down) == [f"{i}abc" for i in range(50)]
    assert isinstance(down[-1], EndFrame)


async def test_system_frame_overtakes_queued_data() -> None:
    slow = Slow(delay=0.05)
    rec = Recorder()
    task = PipelineTask(Pipeline([slow, rec]), idle_timeout_secs=None)
    runner = asyncio.create_task(task.run())
    await task.queue_frames([TextFrame("one"), TextFrame("two"), TextFrame("three")])
    await slow.gate.wait()
    await task.queue_frame(InputDTMFFrame(KeypadEntry.FIVE))
    await task.stop_when_done()
    await runner
    kinds = [type(f).__name__ for f in rec.seen]
    assert kinds.index("InputDTMFFrame") < kinds.index("TextFrame")
    assert texts(rec.seen) == ["one", "two", "three"]


async def test_interruption_drops_queued_data_but_not_system_or_end_frames() -> None:
    slow = Slow(delay=0.2)
    rec = Recorder()
    task = PipelineTask(Pipeline([slow, rec]), idle_timeout_secs=None)
    runner = asyncio.create_task(task.run())
    await task.queue_frames([TextFrame("a"), TextFrame("b"), TextFrame("c")])
    await slow.gate.wait()
    await task.queue_frame(EndFrame())
    await asyncio.sleep(0.01)
    await task.queue_frame(UserStartedSpeakingFrame())
    await task.queue_frame(InterruptionFrame())
    await runner
    assert slow.started == ["a"]
    assert slow.finished == []  # the frame in progress was cancelled
    assert texts(rec.seen) == []
    names = [type(f).__name__ for f in rec.seen]
    assert names == ["UserStartedSpeakingFrame", "InterruptionFrame", "EndFrame"]


async def test_end_frame_drains_everything_queued_before_it() -> None:
    slow = Slow(delay=0.01)
    rec = Recorder()
    down, _ = await run_test(Pipeline([slow, rec]), [TextFrame(str(i)) for i in range(5)])
    assert slow.finished == [str(i) for i in range(5)]
    assert isinstance(down[-1], EndFrame)


async def test_cancel_frame_stops_at_once() -> None:
    slow = Slow(delay=10.0)
    task = PipelineTask(Pipeline([slow]), idle_timeout_secs=None)
    runner = asyncio.create_task(task.run())
    await task.queue_frames([TextFrame("long"), TextFrame("never")])
    await slow.gate.wait()
    await asyncio.wait_for(task.cancel(), 2.0)
    await asyncio.wait_for(runner, 2.0)
    assert task.has_finished()
    assert isinstance(task.end_frame, CancelFrame)
    assert slow.finished == []


async def test_upstream_frames_reach_earlier_processors() -> None:
    class Bouncer(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TextFrame) and direction is FrameDirection.DOWNSTREAM:
                await self.push_frame(TextFrame("up:" + frame.text), FrameDirection.UPSTREAM)
            await self.push_frame(frame, direction)

    first = Recorder()
    frames = [TextFrame("x"), SleepFrame(0.05)]
    down, up = await run_test(Pipeline([first, Bouncer()]), frames)
    assert texts(up) == ["up:x"]
    assert "up:x" in texts(first.seen)
    assert texts(down) == ["x"]


async def test_nested_pipelines_behave_like_a_flat_one() -> None:
    inner = Pipeline([Suffixer("b"), Pipeline([Suffixer("c")])])
    down, _ = await run_test(Pipeline([Suffixer("a"), inner, Suffixer("d")]), [TextFrame("0")])
    assert texts(down) == ["0abcd"]


async def test_parallel_pipeline_fans_out_and_merges_once() -> None:
    parallel = ParallelPipeline([Suffixer("L")], [Suffixer("R")], [Recorder()])
    down, _ = await run_test(parallel, [TextFrame("x")])
    assert sorted(texts(down)) == ["x", "xL", "xR"]
    assert sum(isinstance(f, EndFrame) for f in down) == 1


async def test_exception_is_reported_upstream_and_does_not_hang() -> None:
    class Boom(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TextFrame) and frame.text == "bad":
                raise RuntimeError("kaboom")
            await self.push_frame(frame, direction)

    task_errors: list[ErrorFrame] = []
    boom = Boom()
    task = PipelineTask(Pipeline([boom]), idle_timeout_secs=None)

    @task.event_handler("on_pipeline_error")
    async def on_error(task: PipelineTask, frame: ErrorFrame) -> None:
        task_errors.append(frame)

    await task.queue_frames([TextFrame("bad"), TextFrame("good"), EndFrame()])
    await asyncio.wait_for(task.run(), 5.0)
    assert len(task_errors) == 1
    assert "kaboom" in task_errors[0].error
    assert task_errors[0].processor is boom


async def test_fatal_error_ends_the_task() -> None:
    class Fatal(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TextFrame):
                await self.push_error(ErrorFrame("dead", fatal=True))
            await self.push_frame(frame, direction)

    task = PipelineTask(Pipeline([Fatal()]), idle_timeout_secs=None)
    await task.queue_frame(TextFrame("x"))
    await asyncio.wait_for(task.run(), 5.0)
    assert isinstance(task.end_frame, CancelFrame)


async def test_no_tasks_left_after_runner_returns() -> None:
    before = asyncio.all_tasks()
    slow = Slow(delay=0.01)
    task = PipelineTask(Pipeline([Recorder(), slow, Suffixer("x")]), idle_timeout_secs=30)

    @task.event_handler("on_pipeline_started")
    async def started(task: PipelineTask, frame: Frame) -> None:
        await task.queue_frames([TextFrame("a"), EndFrame()])

    await PipelineRunner(handle_sigint=False).run(task)
    await asyncio.sleep(0)
    leftover = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert leftover == set()
    assert slow.finished == ["a"]


async def test_event_handlers_sync_async_and_failing() -> None:
    calls: list[str] = []
    task = PipelineTask(Pipeline([Recorder()]), idle_timeout_secs=None)

    @task.event_handler("on_pipeline_started")
    def sync_handler(task: PipelineTask, frame: Frame) -> None:
        calls.append("sync")

    @task.event_handler("on_pipeline_started")
    async def failing(task: PipelineTask, frame: Frame) -> None:
        raise ValueError("handler bug")

    @task.event_handler("on_pipeline_started")
    async def async_handler(task: PipelineTask, frame: Frame) -> None:
        calls.append("async")

    @task.event_handler("on_pipeline_finished")
    async def finished(task: PipelineTask, frame: Frame) -> None:
        calls.append(type(frame).__name__)

    await task.queue_frame(EndFrame())
    await asyncio.wait_for(task.run(), 5.0)
    assert calls == ["sync", "async", "EndFrame"]

    with pytest.raises(ValueError, match="unknown event"):
        task.add_event_handler("on_nope", sync_handler)


def test_idle_timeout_cancels_on_virtual_clock() -> None:
    events: list[str] = []

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        task = PipelineTask(Pipeline([Recorder()]), idle_timeout_secs=120)

        @task.event_handler("on_idle_timeout")
        async def on_idle(task: PipelineTask) -> None:
            events.append("idle")

        start = loop.time()
        await task.run()
        assert isinstance(task.end_frame, CancelFrame)
        return loop.time() - start

    elapsed = run_virtual(scenario())
    assert events == ["idle"]
    assert 120 <= elapsed < 121


def test_activity_postpones_idle_timeout() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        task = PipelineTask(Pipeline([Recorder()]), idle_timeout_secs=60)

        async def chatter() -> None:
            for _ in range(3):
                await asyncio.sleep(50)
                await task.queue_frame(UserStartedSpeakingFrame())

        start = loop.time()
        feeder = asyncio.create_task(chatter())
        await task.run()
        await feeder
        return loop.time() - start

    elapsed = run_virtual(scenario())
    assert 210 <= elapsed < 211  # last activity at 150 s + 60 s


def test_pipeline_params_reject_unknown_options() -> None:
    with pytest.raises(ValueError, match="allow_interuptions"):
        PipelineParams(allow_interuptions=True)  # type: ignore[call-arg]
    assert PipelineParams().audio_in_sample_rate == 16000


async def test_runner_cancels_the_task_on_sigint() -> None:
    import os
    import signal

    slow = Slow(delay=60.0)
    task = PipelineTask(Pipeline([slow]), idle_timeout_secs=None)
    await task.queue_frame(TextFrame("forever"))
    runner = PipelineRunner(handle_sigint=True)
    run = asyncio.create_task(runner.run(task))
    await slow.gate.wait()
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.wait_for(run, 5.0)
    assert isinstance(task.end_frame, CancelFrame)
    assert slow.finished == []
    # The handler is removed again: the default SIGINT behaviour is back.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class RaisesOn(FrameProcessor):
    def __init__(self, trigger: type[Frame] | str) -> None:
        super().__init__()
        self.trigger = trigger
        self.texts: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(self.trigger, str) and isinstance(frame, TextFrame):
            if frame.text == self.trigger:
                raise RuntimeError("bug")
            self.texts.append(frame.text)
        elif not isinstance(self.trigger, str) and isinstance(frame, self.trigger):
            raise RuntimeError("bug in shutdown")
        await self.push_frame(frame, direction)


async def test_an_unhandled_exception_ends_the_task_gracefully() -> None:
    proc = RaisesOn("bad")
    task = PipelineTask(Pipeline([proc]), idle_timeout_secs=None)
    await task.queue_frames([TextFrame("ok"), TextFrame("bad")])
    await asyncio.wait_for(task.run(), 5.0)
    assert isinstance(task.end_frame, EndFrame)
    assert task.end_frame.reason == "error"
    assert proc.texts == ["ok"]


async def test_end_on_exception_can_be_turned_off() -> None:
    proc = RaisesOn("bad")
    task = PipelineTask(Pipeline([proc]), idle_timeout_secs=None, end_on_exception=False)
    await task.queue_frames([TextFrame("bad"), TextFrame("after"), EndFrame(reason="done")])
    await asyncio.wait_for(task.run(), 5.0)
    assert task.end_frame.reason == "done"  # type: ignore[union-attr]
    assert proc.texts == ["after"]


async def test_a_processor_failing_on_end_frame_does_not_block_shutdown() -> None:
    task = PipelineTask(Pipeline([RaisesOn(EndFrame), Recorder()]), idle_timeout_secs=None)
    await task.queue_frame(EndFrame())
    await asyncio.wait_for(task.run(), 5.0)
    assert task.has_finished()
