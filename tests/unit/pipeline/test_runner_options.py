"""Pipecat 1.14's runner options: ``PipelineRunner(loop=...)`` (deprecated there) and
``task_manager=`` are taken, and the runner runs on the loop running it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callpipe.frames.frames import EndFrame, TextFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.worker import PipelineWorker
from callpipe.workers.runner import WorkerRunner

from .helpers import Recorder


async def run_one(runner: WorkerRunner) -> Recorder:
    rec = Recorder()
    worker = PipelineWorker(Pipeline([rec]), idle_timeout_secs=None)
    await worker.queue_frames([TextFrame("hello"), EndFrame()])
    await asyncio.wait_for(runner.run(worker), 5)
    return rec


@pytest.mark.parametrize("cls", [PipelineRunner, WorkerRunner])
async def test_loop_is_accepted_with_a_deprecation_warning(
    cls: type[WorkerRunner], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.warns(DeprecationWarning, match="loop is deprecated"):
        runner = cls(handle_sigint=False, loop=asyncio.get_running_loop())
    with caplog.at_level(logging.WARNING):
        rec = await run_one(runner)
    assert any(isinstance(f, TextFrame) and f.text == "hello" for f in rec.seen)
    assert not [r for r in caplog.records if "loop= given" in r.getMessage()]


async def test_another_loop_is_not_used_and_said_so(caplog: pytest.LogCaptureFixture) -> None:
    other = asyncio.new_event_loop()
    try:
        with pytest.warns(DeprecationWarning):
            runner = PipelineRunner(handle_sigint=False, loop=other)
        with caplog.at_level(logging.WARNING):
            rec = await run_one(runner)
    finally:
        other.close()
    assert any(isinstance(f, TextFrame) for f in rec.seen)
    assert [r for r in caplog.records if "not the loop= given" in r.getMessage()]


async def test_task_manager_is_accepted() -> None:
    rec = await run_one(PipelineRunner(handle_sigint=False, task_manager=object()))
    assert any(isinstance(f, TextFrame) for f in rec.seen)
