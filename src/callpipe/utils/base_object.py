"""Named objects with event handlers, shared by processors, transports and services (Pipecat's
``utils.base_object``)."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import Context
from typing import Any, TypeVar

from callpipe.errors import ConfigurationError

logger = logging.getLogger(__name__)

_counters: dict[str, itertools.count[int]] = {}

EventHandler = Callable[..., Any]
F = TypeVar("F", bound=EventHandler)


_warned_ignored: set[tuple[type, str]] = set()


def warn_ignored_option(owner: object, option: str, reason: str) -> None:
    """Say once per class that the Pipecat option ``option`` given to ``owner`` is accepted
    and has no effect in callpipe, and why."""
    key = (type(owner), option)
    if key in _warned_ignored:
        return
    _warned_ignored.add(key)
    logger.warning(
        "%s: %s is accepted for Pipecat 1.14 bots and ignored: %s",
        type(owner).__name__,
        option,
        reason,
    )


def _next_name(cls: type) -> str:
    counter = _counters.setdefault(cls.__name__, itertools.count(0))
    return f"{cls.__name__}#{next(counter)}"


class BaseObject:
    """An object with a readable name and ``@obj.event_handler("on_x")`` registration.

    Handlers may be plain functions or coroutines. A failing handler is logged with the event
    name and never propagates: one broken callback must not end a call.
    """

    def __init__(self, *, name: str | None = None, task_manager: Any = None) -> None:
        """``task_manager``: Pipecat's, accepted and ignored (with a warning)."""
        if task_manager is not None:
            warn_ignored_option(self, "task_manager", "each object owns its tasks in callpipe")
        self._name = name or _next_name(type(self))
        self._event_handlers: dict[str, list[EventHandler]] = {}
        self._background_handlers: set[str] = set()
        self._handler_tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return self._name

    def __str__(self) -> str:
        return self._name

    # ------------------------------------------------------------------ registration

    def _register_event_handler(self, event_name: str, *, background: bool = False) -> None:
        """Declare an event. ``background`` handlers run in their own task (never block)."""
        self._event_handlers.setdefault(event_name, [])
        if background:
            self._background_handlers.add(event_name)

    def event_handler(self, event_name: str) -> Callable[[F], F]:
        """Decorator: ``@transport.event_handler("on_client_connected")``."""

        def decorator(handler: F) -> F:
            self.add_event_handler(event_name, handler)
            return handler

        return decorator

    def add_event_handler(self, event_name: str, handler: EventHandler) -> None:
        if event_name not in self._event_handlers:
            known = ", ".join(sorted(self._event_handlers)) or "none"
            raise ConfigurationError(
                f"{self}: unknown event '{event_name}' (known events: {known})"
            )
        self._event_handlers[event_name].append(handler)

    def remove_event_handler(self, event_name: str, handler: EventHandler) -> None:
        """Remove a handler added with :meth:`add_event_handler` (its first occurrence).

        A no-op for an unknown event or a handler that was never added (as in Pipecat). The
        list is replaced, not changed in place, so a handler that removes itself while the
        event is being dispatched does not make the others of that dispatch be skipped.
        """
        handlers = self._event_handlers.get(event_name)
        if handlers is None or handler not in handlers:
            return
        remaining = list(handlers)
        remaining.remove(handler)
        self._event_handlers[event_name] = remaining

    def has_event_handlers(self, event_name: str) -> bool:
        return bool(self._event_handlers.get(event_name))

    # ------------------------------------------------------------------ dispatch

    async def _call_event_handler(self, event_name: str, *args: Any, **kwargs: Any) -> None:
        """Run the handlers of ``event_name`` with ``(self, *args)``.

        Background events are started as tasks and this returns at once.
        """
        handlers = self._event_handlers.get(event_name)
        if not handlers:
            return
        if event_name in self._background_handlers:
            for handler in handlers:
                coro = self._run_handler(event_name, handler, args, kwargs)
                task = asyncio.get_running_loop().create_task(coro, name=f"{self}:{event_name}")
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_tasks.discard)
            return
        for handler in handlers:
            await self._run_handler(event_name, handler, args, kwargs)

    async def _run_handler(
        self,
        event_name: str,
        handler: EventHandler,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        try:
            result = handler(self, *args, **kwargs)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s: event handler for '%s' failed", self, event_name)

    async def wait_for_event_handlers(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait for background handler tasks to finish (cancel them after ``timeout``)."""
        tasks = [t for t in self._handler_tasks if t is not asyncio.current_task()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished; safe to call on the current task."""
    if task is None or task.done():
        return
    task.cancel()
    if task is asyncio.current_task():
        return
    try:
        await task
    except asyncio.CancelledError:
        # Swallow the task's cancellation, but re-raise if *we* are being cancelled.
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        logger.exception("task %s failed while being cancelled", task.get_name())


def create_logged_task(
    coro: Coroutine[Any, Any, Any] | Awaitable[Any],
    name: str,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    context: Context | None = None,
) -> asyncio.Task[Any]:
    """Create a task (on ``loop``, the running one by default; in ``context``) whose
    unexpected exception is logged instead of lost."""

    async def runner() -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("task %s failed", name)
            return None

    task = (loop or asyncio.get_running_loop()).create_task(runner(), name=name, context=context)
    if inspect.iscoroutine(coro):
        # Cancelled before it ever ran: close the inner coroutine so it is not reported as
        # "never awaited" (closing a finished coroutine is a no-op).
        task.add_done_callback(lambda _: coro.close())
    return task
