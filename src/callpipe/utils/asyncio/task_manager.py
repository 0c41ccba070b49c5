"""Pipecat 1.14's task manager, for code that creates one itself.

callpipe's processors and services own their tasks (``BaseObject.create_task``), so nothing in
callpipe needs a task manager handed in: ``FrameProcessorSetup(task_manager=...)`` and the
``task_manager=`` options are accepted and unused. This module is for application code written
against Pipecat that makes one, e.g. a custom turn strategy's ``setup(task_manager)`` or a unit
test that sets a processor up by hand: a working manager that keeps the tasks it made until
they end, logs a task's unexpected exception instead of losing it, and cancels and waits.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from contextvars import Context
from dataclasses import dataclass
from typing import Any

from callpipe.utils.base_object import cancel_and_wait, create_logged_task

logger = logging.getLogger(__name__)


@dataclass
class TaskManagerParams:
    """Deprecated in Pipecat 1.5 (pass ``loop`` to :class:`TaskManager`); kept for old code."""

    loop: asyncio.AbstractEventLoop


@dataclass
class TaskData:
    """One task a manager keeps."""

    task: asyncio.Task[Any]


class BaseTaskManager(ABC):
    """What a task manager does: make named tasks on its loop, cancel them, list them."""

    @abstractmethod
    def get_event_loop(self) -> asyncio.AbstractEventLoop: ...

    @abstractmethod
    def create_task(
        self, coroutine: Coroutine[Any, Any, Any], name: str, context: Context | None = None
    ) -> asyncio.Task[Any]: ...

    @abstractmethod
    async def cancel_task(
        self,
        task: asyncio.Task[Any],
        timeout: float | None = None,  # noqa: ASYNC109 (Pipecat's signature)
    ) -> None: ...

    @abstractmethod
    def current_tasks(self) -> Sequence[asyncio.Task[Any]]: ...


class TaskManager(BaseTaskManager):
    """Makes tasks on ``loop`` (the running loop by default) and keeps them until they end."""

    def __init__(
        self, *, context: Context | None = None, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self._context = context
        self._loop = loop or asyncio.get_running_loop()
        self._tasks: dict[asyncio.Task[Any], TaskData] = {}

    def setup(self, params: TaskManagerParams) -> None:
        """Deprecated since Pipecat 1.5: the constructor takes the loop. Does nothing."""
        warnings.warn(
            "TaskManager.setup is deprecated; pass loop= to TaskManager",
            DeprecationWarning,
            stacklevel=2,
        )

    def get_event_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def create_task(
        self, coroutine: Coroutine[Any, Any, Any], name: str, context: Context | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coroutine`` in a task named ``name``; an exception it raises is logged with
        the name (the task then ends with None), a cancellation passes through."""
        task = create_logged_task(
            coroutine, name, loop=self._loop, context=context or self._context
        )
        self._tasks[task] = TaskData(task)
        task.add_done_callback(self._forget)
        return task

    async def cancel_task(
        self,
        task: asyncio.Task[Any],
        timeout: float | None = None,  # noqa: ASYNC109 (Pipecat's signature)
    ) -> None:
        """Cancel ``task`` and wait for it to end (at most ``timeout`` seconds when given).
        Cancelling the task this runs in is refused with a warning: it would never end."""
        if task is asyncio.current_task():
            logger.warning("%s: not cancelling the task that is running", task.get_name())
            return
        if timeout is None:
            await cancel_and_wait(task)
            return
        try:
            await asyncio.wait_for(cancel_and_wait(task), timeout)
        except TimeoutError:
            name = task.get_name()
            logger.warning("%s: still running %.1fs after it was cancelled", name, timeout)

    def current_tasks(self) -> Sequence[asyncio.Task[Any]]:
        """The tasks made here that have not ended."""
        return list(self._tasks)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)


__all__ = ["BaseTaskManager", "TaskData", "TaskManager", "TaskManagerParams"]
