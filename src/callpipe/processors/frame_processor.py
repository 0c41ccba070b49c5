"""FrameProcessor: the unit of work in a pipeline.

How frames move (the whole scheduling model, kept small on purpose):

- A **system frame** is processed inline by whoever delivers it: no queue, no task hop. That is
  why inbound audio, interruptions and cancellation overtake everything else.
- A **data or control frame** is appended to the processor's own queue and processed in order by
  the processor's one worker task, so a slow step (a TTS request) never blocks its upstream.
- An **interruption** drops queued interruptible frames and cancels the frame in progress if it
  is interruptible; ``EndFrame`` and other uninterruptible frames survive.
- An exception in ``process_frame`` is logged once and reported upstream as an ``ErrorFrame``;
  the processor keeps running.

Pass-through containers (pipelines, sources, sinks) set ``direct = True``: every frame is
processed inline, so nesting pipelines adds no queues.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Protocol

from callpipe.clock import DEFAULT_CLOCK, Clock
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    StartFrame,
    SystemFrame,
)
from callpipe.log import call_tag
from callpipe.processors.base_object import BaseObject, cancel_and_wait, create_logged_task

logger = logging.getLogger(__name__)


class FrameDirection(IntEnum):
    DOWNSTREAM = 1
    UPSTREAM = 2


class FrameObserver(Protocol):
    """Watches frames as they move between processors (metrics, tracing, tests)."""

    def on_push_frame(
        self, src: FrameProcessor, dst: FrameProcessor, frame: Frame, direction: FrameDirection
    ) -> None: ...


@dataclass
class FrameProcessorSetup:
    """What the task hands every processor before the StartFrame: the clock and observers."""

    clock: Clock = DEFAULT_CLOCK
    observers: Sequence[FrameObserver] = field(default_factory=tuple)


class FrameProcessor(BaseObject):
    """Base class: override ``process_frame`` and call ``push_frame`` to pass frames on.

    Subclasses follow the usual pattern::

        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if isinstance(frame, TextFrame):
                await self.push_frame(TextFrame(frame.text.upper()), direction)
            else:
                await self.push_frame(frame, direction)
    """

    direct: ClassVar[bool] = False

    def __init__(self, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name)
        self._prev: FrameProcessor | None = None
        self._next: FrameProcessor | None = None
        self._clock: Clock = DEFAULT_CLOCK
        self._observers: Sequence[FrameObserver] = ()
        self._queue: deque[tuple[Frame, FrameDirection]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._current: Frame | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._cancelling = False
        self._allow_interruptions = True
        self._enable_metrics = False

    # ------------------------------------------------------------------ wiring

    @property
    def next(self) -> FrameProcessor | None:
        return self._next

    @property
    def previous(self) -> FrameProcessor | None:
        return self._prev

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def interruptions_allowed(self) -> bool:
        return self._allow_interruptions

    @property
    def metrics_enabled(self) -> bool:
        return self._enable_metrics

    def link(self, processor: FrameProcessor) -> None:
        self._next = processor
        processor._prev = self

    def processors_with_children(self) -> list[FrameProcessor]:
        """This processor and, for containers, everything inside (depth first)."""
        return [self]

    async def setup(self, setup: FrameProcessorSetup) -> None:
        self._clock = setup.clock
        self._observers = setup.observers

    async def cleanup(self) -> None:
        """Stop the worker and every task this processor created."""
        await cancel_and_wait(self._worker)
        self._worker = None
        for task in list(self._tasks):
            await cancel_and_wait(task)
        await self.wait_for_event_handlers(timeout=1.0)

    # ------------------------------------------------------------------ tasks

    def create_task(
        self, coro: Coroutine[Any, Any, Any], name: str | None = None
    ) -> asyncio.Task[Any]:
        """Start a task owned by this processor; it is cancelled at cleanup at the latest."""
        task = create_logged_task(coro, f"{self}:{name or 'task'}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel_task(self, task: asyncio.Task[Any] | None) -> None:
        await cancel_and_wait(task)

    # ------------------------------------------------------------------ frame flow

    async def queue_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Deliver a frame to this processor (system frames are processed right here)."""
        if self._cancelling and not isinstance(frame, CancelFrame):
            return
        if self.direct or isinstance(frame, SystemFrame):
            await self._process_safely(frame, direction)
            return
        self.enqueue_frame(frame, direction)

    def enqueue_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Append a data/control frame to this processor's ordered queue (no await needed)."""
        self._queue.append((frame, direction))
        if self._wakeup is not None:
            self._wakeup.set()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Base handling of lifecycle frames; subclasses call this first."""
        if isinstance(frame, StartFrame):
            self._started = True
            self._allow_interruptions = frame.allow_interruptions
            self._enable_metrics = frame.enable_metrics
            self._start_worker()
        elif isinstance(frame, InterruptionFrame):
            await self._handle_interruption()
        elif isinstance(frame, CancelFrame):
            self._cancelling = True
            self._queue.clear()
            if self._worker is not asyncio.current_task():
                await cancel_and_wait(self._worker)
                self._worker = None

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Pass ``frame`` to the next processor (downstream) or the previous one (upstream)."""
        target = self._next if direction is FrameDirection.DOWNSTREAM else self._prev
        if target is None:
            return
        if self._observers:
            for observer in self._observers:
                observer.on_push_frame(self, target, frame, direction)
        await target.queue_frame(frame, direction)

    async def push_error(self, error: ErrorFrame) -> None:
        error.processor = self
        await self.push_frame(error, FrameDirection.UPSTREAM)

    # ------------------------------------------------------------------ internals

    async def _process_safely(self, frame: Frame, direction: FrameDirection) -> None:
        try:
            await self.process_frame(frame, direction)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("%s%s: error processing %s", call_tag(), self, frame)
            if not isinstance(frame, ErrorFrame):
                # A processor that cannot start leaves a pipeline that can never work: fatal.
                await self.push_error(
                    ErrorFrame(
                        error=f"{self}: {type(exc).__name__}: {exc}",
                        fatal=isinstance(frame, StartFrame),
                        unhandled=True,
                    )
                )
            if isinstance(frame, EndFrame | CancelFrame):
                await self.push_frame(frame, direction)  # shutdown must still get through

    def _start_worker(self) -> None:
        if self.direct or self._worker is not None:
            return
        self._wakeup = asyncio.Event()
        self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"{self}:worker")

    async def _work(self) -> None:
        queue = self._queue
        wakeup = self._wakeup
        assert wakeup is not None
        while True:
            while not queue:
                wakeup.clear()
                await wakeup.wait()
            frame, direction = queue.popleft()
            self._current = frame
            try:
                await self._process_safely(frame, direction)
            finally:
                self._current = None

    async def _handle_interruption(self) -> None:
        """Drop queued interruptible frames; cancel the one in progress if it is interruptible."""
        if self._queue:
            kept = [item for item in self._queue if item[0].UNINTERRUPTIBLE]
            self._queue.clear()
            self._queue.extend(kept)
        current = self._current
        worker = self._worker
        if worker is None or current is None or current.UNINTERRUPTIBLE:
            return
        self._worker = None
        self._current = None
        worker.cancel()
        if worker is not asyncio.current_task():
            try:
                await worker
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
        self._start_worker()
