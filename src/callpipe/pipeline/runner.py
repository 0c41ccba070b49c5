"""PipelineRunner: runs a PipelineTask to completion, optionally handling SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from callpipe.pipeline.task import PipelineTask

logger = logging.getLogger(__name__)


class PipelineRunner:
    """Runs tasks; with ``handle_sigint``/``handle_sigterm`` a signal cancels them cleanly.

    Under a server (uvicorn owns the signals) pass ``handle_sigint=False``. ``force_gc`` runs a
    garbage collection after each task, which keeps long-running servers' memory flat.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        handle_sigint: bool = True,
        handle_sigterm: bool = False,
        force_gc: bool = False,
    ) -> None:
        self.name = name or "PipelineRunner"
        self._handle_sigint = handle_sigint
        self._handle_sigterm = handle_sigterm
        self._force_gc = force_gc
        self._tasks: set[PipelineTask] = set()
        self._signal_tasks: set[asyncio.Task[None]] = set()

    async def run(self, task: PipelineTask) -> None:
        loop = asyncio.get_running_loop()
        installed = self._install_signals(loop)
        self._tasks.add(task)
        try:
            await task.run()
        finally:
            self._tasks.discard(task)
            for sig in installed:
                loop.remove_signal_handler(sig)
            if self._signal_tasks:
                await asyncio.gather(*self._signal_tasks, return_exceptions=True)
            if self._force_gc:
                await asyncio.to_thread(gc.collect)

    async def cancel(self) -> None:
        await asyncio.gather(*(task.cancel() for task in list(self._tasks)))

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
