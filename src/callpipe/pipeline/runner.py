"""WorkerRunner / PipelineRunner: run pipeline workers to completion, optionally on signals.

Pipecat 1.x: ``runner = WorkerRunner(handle_sigint=False); await runner.add_workers(worker);
await runner.run()``. The spec: ``await PipelineRunner(...).run(task)``. Both work, with either
class; ``callpipe.workers.runner`` re-exports ``WorkerRunner``.

Pipecat 1.14's ``loop=`` (deprecated there since 1.5) is accepted with a ``DeprecationWarning``
and not used: the runner always runs on the loop running :meth:`WorkerRunner.run`.
``task_manager=`` is accepted and ignored (each processor owns its tasks here), as by
``PipelineWorker``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import warnings
from typing import Any

from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.base_object import BaseObject

logger = logging.getLogger(__name__)


class WorkerRunner(BaseObject):
    """Runs workers; with ``handle_sigint``/``handle_sigterm`` a signal cancels them cleanly.

    Under a server (uvicorn owns the signals) pass ``handle_sigint=False``. ``force_gc`` runs a
    garbage collection after the run, which keeps long-running servers' memory flat.
    ``run()`` returns when every worker has finished (``auto_end=True``, the default) or when
    :meth:`end`/:meth:`cancel` is called. Event: ``on_ready(runner)`` once workers are started.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        handle_sigint: bool = True,
        handle_sigterm: bool = False,
        force_gc: bool = False,
        check_dangling_tasks: bool = True,
        loop: asyncio.AbstractEventLoop | None = None,
        task_manager: Any = None,
    ) -> None:
        """``loop`` and ``task_manager``: Pipecat's, not used (see the module docstring)."""
        if loop is not None:
            warnings.warn(
                "loop is deprecated (Pipecat 1.5) and not used: the runner runs on the loop "
                "that runs it",
                DeprecationWarning,
                stacklevel=2,
            )
        super().__init__(name=name or type(self).__name__)
        self._given_loop = loop
        self._handle_sigint = handle_sigint
        self._handle_sigterm = handle_sigterm
        self._force_gc = force_gc
        self._workers: list[PipelineWorker] = []
        self._running: dict[PipelineWorker, asyncio.Task[None]] = {}
        self._signal_tasks: set[asyncio.Task[None]] = set()
        self._shutdown: asyncio.Event | None = None
        self._register_event_handler("on_ready")

    async def add_workers(self, *workers: PipelineWorker) -> None:
        """Add workers; they start with :meth:`run` (or at once if the runner is running)."""
        for worker in workers:
            if worker in self._workers:
                continue
            self._workers.append(worker)
            if self._shutdown is not None:
                self._start(worker)

    async def run(self, worker: PipelineWorker | None = None, *, auto_end: bool = True) -> None:
        """Run the added workers (and ``worker``, the older API's and Pipecat's older call form)."""
        loop = asyncio.get_running_loop()
        if self._given_loop is not None and self._given_loop is not loop:
            logger.warning("%s: running on the current event loop, not the loop= given", self.name)
        installed = self._install_signals(loop)
        self._shutdown = asyncio.Event()
        if worker is not None:
            await self.add_workers(worker)
        try:
            for each in list(self._workers):
                self._start(each)
            await self._call_event_handler("on_ready")
            await self._wait(auto_end)
        finally:
            for task in list(self._running.values()):
                task.cancel()
            if self._running:
                await asyncio.gather(*self._running.values(), return_exceptions=True)
            self._running.clear()
            self._workers.clear()
            self._shutdown = None
            for sig in installed:
                loop.remove_signal_handler(sig)
            if self._signal_tasks:
                await asyncio.gather(*self._signal_tasks, return_exceptions=True)
            if self._force_gc:
                await asyncio.to_thread(gc.collect)

    async def _wait(self, auto_end: bool) -> None:
        shutdown = self._shutdown
        assert shutdown is not None
        while True:
            pending = [t for t in self._running.values() if not t.done()]
            if auto_end and not pending:
                break
            waiter = asyncio.ensure_future(shutdown.wait())
            try:
                await asyncio.wait([*pending, waiter], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if any(w.cancels_runner for w, t in self._running.items() if t.done()):
                logger.info("%s: a worker was idle; cancelling the others", self.name)
                await self.cancel("idle")
            if shutdown.is_set():
                # end(): let the workers play out; cancel(): they are already cancelling.
                running = [t for t in self._running.values() if not t.done()]
                if running:
                    await asyncio.gather(*running, return_exceptions=True)
                break
        for task in self._running.values():
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def _start(self, worker: PipelineWorker) -> None:
        if worker in self._running:
            return
        worker.worker_runner = self
        self._running[worker] = asyncio.get_running_loop().create_task(
            worker.run(), name=f"{self}:{worker}"
        )

    async def stop_when_done(self) -> None:
        """Ask every worker to end once what it has queued is processed."""
        await asyncio.gather(*(w.stop_when_done() for w in self._workers))

    async def end(self, reason: str | None = None) -> None:
        """End every worker gracefully and return from :meth:`run` once they have."""
        await asyncio.gather(*(w.end(reason=reason) for w in self._workers))
        if self._shutdown is not None:
            self._shutdown.set()

    async def cancel(self, reason: str | None = None) -> None:
        """Cancel every worker (bounded by each worker's cancel timeout)."""
        await asyncio.gather(*(w.cancel(reason) for w in list(self._workers)))
        if self._shutdown is not None:
            self._shutdown.set()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        wanted = []
        if self._handle_sigint:
            wanted.append(signal.SIGINT)
        if self._handle_sigterm:
            wanted.append(signal.SIGTERM)
        installed = []
        for sig in wanted:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                logger.debug("%s: cannot handle %s in this thread", self.name, sig.name)
        return installed

    def _on_signal(self, sig: signal.Signals) -> None:
        logger.warning("%s: %s received, cancelling", self.name, sig.name)
        task = asyncio.get_running_loop().create_task(self.cancel())
        self._signal_tasks.add(task)
        task.add_done_callback(self._signal_tasks.discard)


class PipelineRunner(WorkerRunner):
    """The spec's name for :class:`WorkerRunner` (``await PipelineRunner().run(task)``)."""
