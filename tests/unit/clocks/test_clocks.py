"""callpipe.clocks: Pipecat's BaseClock / SystemClock, also usable as the pipeline clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from callpipe.clock import Clock
from callpipe.clocks.base_clock import BaseClock
from callpipe.clocks.system_clock import SystemClock
from callpipe.frames.frames import TextFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineWorker

from ..pipeline.helpers import Recorder


def test_base_clock_is_abstract() -> None:
    with pytest.raises(TypeError):
        BaseClock()  # type: ignore[abstract]


def test_system_clock_counts_nanoseconds_from_start() -> None:
    clock = SystemClock()
    assert clock.get_time() == 0  # not started
    clock.start()
    before = time.monotonic_ns()
    time.sleep(0.002)
    elapsed = clock.get_time()
    assert 2_000_000 <= elapsed <= time.monotonic_ns() - before + 1_000_000_000
    assert isinstance(clock, BaseClock)


async def test_system_clock_drives_a_pipeline_worker() -> None:
    clock = SystemClock()
    checked: Clock = clock  # the worker's clock protocol
    assert abs(checked.now() - asyncio.get_running_loop().time()) < 1
    recorder = Recorder()
    worker = PipelineWorker(Pipeline([recorder]), clock=clock, idle_timeout_secs=None)
    await worker.queue_frame(TextFrame("hi"))
    await worker.stop_when_done()
    await asyncio.wait_for(worker.run(), 5)
    assert recorder.clock is clock
    assert [f.text for f in recorder.seen if isinstance(f, TextFrame)] == ["hi"]
