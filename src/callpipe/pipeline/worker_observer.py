"""The proxy between processors and a worker's ``BaseObserver`` s.

Processors call it synchronously (no await on the hot path); it builds the event once and
queues it to each observer, whose own task awaits the async hook. A failing observer is logged
and keeps receiving events; a slow one only delays itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence

from callpipe.clock import DEFAULT_CLOCK, Clock
from callpipe.frames.frames import Frame
from callpipe.observers.base_observer import (
    BaseObserver,
    FrameProcessed,
    FramePushed,
    ProcessorSetUp,
)
from callpipe.processors.base_object import cancel_and_wait
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)

_FIRST_PUSH_MEMORY = 4096  # frame ids remembered to tell a frame's first push from the rest

_Event = FramePushed | FrameProcessed | ProcessorSetUp | None  # None = pipeline started


class WorkerObserver:
    """Fans processor events out to ``BaseObserver`` s, each through its own queue and task."""

    def __init__(self, observers: Sequence[BaseObserver] = (), *, clock: Clock | None = None):
        self._observers: list[BaseObserver] = list(observers)
        self._clock = clock or DEFAULT_CLOCK
        self._queues: dict[BaseObserver, asyncio.Queue[_Event]] = {}
        self._tasks: dict[BaseObserver, asyncio.Task[None]] = {}
        self._pushed: OrderedDict[int, None] = OrderedDict()
        self._start = 0.0
        self._running = False
        self._push_wanted: set[BaseObserver] = set()
        self._process_wanted: set[BaseObserver] = set()

    def __bool__(self) -> bool:
        return bool(self._observers)

    @property
    def wants_pushes(self) -> bool:
        """Some observer overrides ``on_push_frame`` (else processors need not report pushes)."""
        return any(_overrides(o, "on_push_frame") for o in self._observers)

    @property
    def wants_processing(self) -> bool:
        """Some observer overrides ``on_process_frame``."""
        return any(_overrides(o, "on_process_frame") for o in self._observers)

    @property
    def wants_setup_timing(self) -> bool:
        """Some observer overrides ``on_processor_setup`` (else the worker times no setup)."""
        return any(_overrides(o, "on_processor_setup") for o in self._observers)

    @property
    def observers(self) -> list[BaseObserver]:
        return list(self._observers)

    def start(self) -> None:
        """Start the observers' tasks (called by the worker inside the running loop)."""
        self._start = self._clock.now()
        self._running = True
        for observer in self._observers:
            self._start_one(observer)

    def add(self, observer: BaseObserver) -> None:
        self._observers.append(observer)
        if self._running:
            self._start_one(observer)

    async def remove(self, observer: BaseObserver) -> None:
        if observer in self._observers:
            self._observers.remove(observer)
        self._queues.pop(observer, None)
        await cancel_and_wait(self._tasks.pop(observer, None))

    async def stop(self) -> None:
        """Let queued events drain briefly, then stop every observer task."""
        for observer, queue in list(self._queues.items()):
            task = self._tasks.get(observer)
            if task is None:
                continue
            try:
                await asyncio.wait_for(queue.join(), timeout=1.0)
            except TimeoutError:
                logger.warning("observer %s still busy at shutdown; dropping its events", observer)
        for task in list(self._tasks.values()):
            await cancel_and_wait(task)
        self._tasks.clear()
        self._queues.clear()
        self._running = False

    # ------------------------------------------------------------------ processor hooks

    def on_push_frame(
        self, src: FrameProcessor, dst: FrameProcessor, frame: Frame, direction: FrameDirection
    ) -> None:
        pushed = self._pushed
        first = frame.id not in pushed
        if first:
            pushed[frame.id] = None
            if len(pushed) > _FIRST_PUSH_MEMORY:
                pushed.popitem(last=False)
        event = FramePushed(src, dst, frame, direction, self._timestamp(), first)
        for observer, queue in self._queues.items():
            if (first or observer.observe_every_push) and observer in self._push_wanted:
                queue.put_nowait(event)

    def on_process_frame(
        self, processor: FrameProcessor, frame: Frame, direction: FrameDirection
    ) -> None:
        event = FrameProcessed(processor, frame, direction, self._timestamp())
        for observer, queue in self._queues.items():
            if observer in self._process_wanted:
                queue.put_nowait(event)

    def timestamp_ns(self) -> int:
        """Now on the observers' clock: ns since :meth:`start`."""
        return self._timestamp()

    def processor_setup(self, processor: FrameProcessor, started_ns: int, finished_ns: int) -> None:
        event = ProcessorSetUp(processor, started_ns, finished_ns)
        for observer, queue in self._queues.items():
            if _overrides(observer, "on_processor_setup"):
                queue.put_nowait(event)

    def pipeline_started(self) -> None:
        for queue in self._queues.values():
            queue.put_nowait(None)

    # ------------------------------------------------------------------ internals

    def _timestamp(self) -> int:
        return int((self._clock.now() - self._start) * 1_000_000_000)

    def _start_one(self, observer: BaseObserver) -> None:
        if _overrides(observer, "on_push_frame"):
            self._push_wanted.add(observer)
        if _overrides(observer, "on_process_frame"):
            self._process_wanted.add(observer)
        queue: asyncio.Queue[_Event] = asyncio.Queue()
        self._queues[observer] = queue
        self._tasks[observer] = asyncio.get_running_loop().create_task(
            self._deliver(observer, queue), name=f"observer:{observer}"
        )

    async def _deliver(self, observer: BaseObserver, queue: asyncio.Queue[_Event]) -> None:
        while True:
            event = await queue.get()
            try:
                if event is None:
                    await observer.on_pipeline_started()
                elif isinstance(event, FramePushed):
                    await observer.on_push_frame(event)
                elif isinstance(event, ProcessorSetUp):
                    await observer.on_processor_setup(event)
                else:
                    await observer.on_process_frame(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("observer %s failed on %s", observer, event)
            finally:
                queue.task_done()


def _overrides(observer: BaseObserver, hook: str) -> bool:
    """Whether ``observer``'s class replaces ``BaseObserver``'s no-op ``hook``."""
    return getattr(type(observer), hook) is not getattr(BaseObserver, hook)
