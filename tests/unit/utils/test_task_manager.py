"""Pipecat's ``utils.asyncio.task_manager`` for application code that makes its own."""

from __future__ import annotations

import asyncio

import pytest

from callpipe.utils.asyncio.task_manager import BaseTaskManager, TaskManager, TaskManagerParams


async def test_tasks_are_kept_until_they_end_and_failures_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = TaskManager()
    assert isinstance(manager, BaseTaskManager)
    assert manager.get_event_loop() is asyncio.get_running_loop()
    gate = asyncio.Event()

    async def wait() -> str:
        await gate.wait()
        return "done"

    async def fail() -> None:
        raise ValueError("boom")

    waiting = manager.create_task(wait(), "waiting")
    failing = manager.create_task(fail(), "failing")
    assert waiting.get_name() == "waiting"
    assert set(manager.current_tasks()) == {waiting, failing}
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert manager.current_tasks() == [waiting]
    assert failing.result() is None and "task failing failed" in caplog.text
    gate.set()
    assert await waiting == "done"
    assert manager.current_tasks() == []


async def test_cancel_waits_and_refuses_to_cancel_its_own_task() -> None:
    manager = TaskManager()
    forever = manager.create_task(asyncio.Event().wait(), "forever")
    await manager.cancel_task(forever, timeout=1.0)
    assert forever.cancelled() and manager.current_tasks() == []

    async def cancel_self() -> bool:
        task = asyncio.current_task()
        assert task is not None
        await manager.cancel_task(task)
        return True

    assert await manager.create_task(cancel_self(), "self") is True


async def test_the_deprecated_setup_still_takes_its_params() -> None:
    manager = TaskManager()
    with pytest.warns(DeprecationWarning, match="loop="):
        manager.setup(TaskManagerParams(loop=asyncio.get_running_loop()))
