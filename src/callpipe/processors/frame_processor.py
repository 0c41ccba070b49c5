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
- Observers and the ``on_before/after_process/push_frame`` events cost one attribute test per
  frame when nobody uses them: the extra work sits behind a flag set when one is attached.

Pass-through containers (pipelines, sources, sinks) set ``direct = True``: every frame is
processed inline, so nesting pipelines adds no queues.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Protocol

from callpipe.clock import DEFAULT_CLOCK, Clock
from callpipe.clocks.base_clock import BaseClock
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    FrameProcessorPauseFrame,
    FrameProcessorPauseUrgentFrame,
    FrameProcessorResumeFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    StartFrame,
    SystemFrame,
)
from callpipe.log import call_tag
from callpipe.utils.base_object import (
    BaseObject,
    cancel_and_wait,
    create_logged_task,
    warn_ignored_option,
)
from callpipe.utils.errors import ErrorCategory

logger = logging.getLogger(__name__)

PAUSE_UNTIL_READY_TIMEOUT_SECS = 10.0
_warned_unused: set[tuple[type, str]] = set()


def _warn_unused(cls: type, kwargs: dict[str, Any]) -> None:
    """Keyword arguments no class of the processor took. Pipecat drops them silently; here a
    Pipecat option callpipe does not support (or a misspelt one) is said once per class."""
    names = sorted(name for name in kwargs if (cls, name) not in _warned_unused)
    if not names:
        return
    _warned_unused.update((cls, name) for name in names)
    logger.warning(
        "%s: ignoring %s: no such option in callpipe", cls.__name__, ", ".join(map(repr, names))
    )


_PROCESS_EVENTS = ("on_before_process_frame", "on_after_process_frame")
_PUSH_EVENTS = ("on_before_push_frame", "on_after_push_frame")


class FrameDirection(IntEnum):
    DOWNSTREAM = 1
    UPSTREAM = 2


class FrameObserver(Protocol):
    """Watches frames as they move between processors (metrics, tracing, tests)."""

    def on_push_frame(
        self, src: FrameProcessor, dst: FrameProcessor, frame: Frame, direction: FrameDirection
    ) -> None: ...


class ProcessObserver(Protocol):
    """Watches frames as processors are about to process them."""

    def on_process_frame(
        self, processor: FrameProcessor, frame: Frame, direction: FrameDirection
    ) -> None: ...


class SetupTimer(Protocol):
    """Times each processor's ``setup()`` (the worker's observers, when one asks for it)."""

    def timestamp_ns(self) -> int: ...

    def processor_setup(
        self, processor: FrameProcessor, started_ns: int, finished_ns: int
    ) -> None: ...


class WorkerResources(Protocol):
    """What a processor may reach of the worker running it (Pipecat 1.14's
    ``self.pipeline_worker``): the application's resources and the runner hosting it."""

    @property
    def app_resources(self) -> Any: ...

    @property
    def worker_runner(self) -> Any: ...


@dataclass
class FrameProcessorSetup:
    """What the task hands every processor before the StartFrame: the clock, the observers
    and the worker running the pipeline (``pipeline_worker``, read by processors as
    ``self.pipeline_worker``, e.g. for its ``app_resources``).

    ``timer``: set when an observer wants each setup timed. ``failed``: the processor whose
    setup raised, innermost first (filled by :func:`setup_processor`).

    Pipecat 1.14's other fields (``task_manager``, the audio rates, ``enable_metrics``,
    ``enable_tracing``, ``enable_usage_metrics``, ``observer``, ``report_only_initial_ttfb``,
    ``tracing_context``, ``tool_resources``) are accepted, so code that sets a processor up by
    hand (a unit test of a custom processor) runs; callpipe's processors read those settings
    from the ``StartFrame``, and own their tasks.
    """

    clock: Clock = DEFAULT_CLOCK
    observers: Sequence[FrameObserver] = field(default_factory=tuple)
    process_observers: Sequence[ProcessObserver] = field(default_factory=tuple)
    timer: SetupTimer | None = None
    failed: list[FrameProcessor] = field(default_factory=list)
    pipeline_worker: WorkerResources | None = None
    task_manager: Any = None
    audio_in_sample_rate: int = 16000
    audio_out_sample_rate: int = 24000
    enable_metrics: bool = False
    enable_tracing: bool = False
    enable_usage_metrics: bool = False
    observer: Any = None
    report_only_initial_ttfb: bool = False
    tracing_context: Any = None
    tool_resources: Any = None


async def setup_processor(processor: FrameProcessor, setup: FrameProcessorSetup) -> None:
    """Set one processor up: what the worker does for the pipeline and a container (a
    pipeline, a switcher) does for each processor it holds, so every processor is set up
    exactly once, timed when an observer asks, and a failure names the processor that raised.
    """
    timer = setup.timer
    began = timer.timestamp_ns() if timer is not None else 0
    try:
        await processor.setup(setup)
    except Exception:
        if not setup.failed:
            setup.failed.append(processor)
        raise
    if timer is not None:
        timer.processor_setup(processor, began, timer.timestamp_ns())


async def cleanup_processor(processor: FrameProcessor) -> None:
    """Clean one processor up, logging (not raising) a failure, so the others still are."""
    try:
        await processor.cleanup()
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("cleanup of %s failed", processor)


class _NanosecondView(BaseClock):
    """A :class:`Clock` read the Pipecat way (see :meth:`FrameProcessor.get_clock`)."""

    __slots__ = ("_clock",)

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def get_time(self) -> int:
        return int(self._clock.now() * 1_000_000_000)

    def start(self) -> None:
        """Nothing to start: the pipeline clock is already running."""


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

    direct: bool = False
    """Process every frame inline (no queue, no worker task); per class, or per instance with
    Pipecat's ``enable_direct_mode=True``."""

    def __init__(
        self,
        *,
        name: str | None = None,
        enable_direct_mode: bool = False,
        metrics: Any = None,
        task_manager: Any = None,
        **kwargs: Any,
    ) -> None:
        """``metrics`` and ``task_manager``: Pipecat's, accepted and ignored (with a warning);
        any other unknown keyword is warned about once per class and ignored."""
        super().__init__(name=name, task_manager=task_manager)
        if metrics is not None:
            warn_ignored_option(
                self, "metrics", "processors report metrics as MetricsFrames in callpipe"
            )
        if kwargs:
            _warn_unused(type(self), kwargs)
        if enable_direct_mode:
            self.direct = True
        self._prev: FrameProcessor | None = None
        self._next: FrameProcessor | None = None
        self._clock: Clock = DEFAULT_CLOCK
        self._setup: FrameProcessorSetup | None = None
        self._observers: Sequence[FrameObserver] = ()
        self._process_observers: Sequence[ProcessObserver] = ()
        # Slow-path flags: False unless an observer/handler is attached or a pause is on.
        self._push_hooks = False
        self._process_hooks = False
        # push_frame may run this processor's process_frame itself (see _deliver_inline).
        self._inline = type(self)._plain_delivery
        self._gate = False  # cancelling or system frames paused: queue_frame takes the slow path
        # push_frame may step over this processor with the caller's audio (see passes_input_audio).
        self._skip_input_audio = False
        self._system_paused = False
        self._held_system: deque[tuple[Frame, FrameDirection]] = deque()
        self._paused = False
        self._pause_watcher: asyncio.Task[None] | None = None
        self._queue: deque[tuple[Frame, FrameDirection]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._current: Frame | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._cancelling = False
        self._allow_interruptions = True
        self._enable_metrics = False
        self._usable = True
        for event in (*_PROCESS_EVENTS, *_PUSH_EVENTS):
            self._register_event_handler(event)
        self._register_event_handler("on_usable_changed")
        # (processor, ErrorFrame): each error this processor reports (push_error), as 1.14.
        self._register_event_handler("on_error")

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

    def get_clock(self) -> BaseClock:
        """Pipecat's way to the pipeline clock: ``get_clock().get_time()`` in nanoseconds.

        A small view of :attr:`clock` whose ``get_time()`` is ``now()`` in integer nanoseconds:
        one scale for every processor of the pipeline (the worker never calls a clock's
        ``start()``, so even a ``SystemClock`` is read this way), so differences and orderings
        mean what they do in Pipecat. Not for per-frame use: it makes a small object per call.
        """
        return _NanosecondView(self._clock)

    @property
    def interruptions_allowed(self) -> bool:
        return self._allow_interruptions

    @property
    def is_usable(self) -> bool:
        """False once the processor reported an error it cannot recover from."""
        return self._usable

    async def set_usable(self, is_usable: bool) -> None:
        """Mark the processor able (or unable) to be given work; fires ``on_usable_changed``.

        An application brings a service back this way once whatever stopped it is dealt with
        (new credentials, a provider up again); a service switcher can then switch to it.
        """
        if is_usable == self._usable:
            return
        self._usable = is_usable
        logger.debug("%s: %s", self, "usable again" if is_usable else "no longer usable")
        await self._call_event_handler("on_usable_changed", is_usable)

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
        self._setup = setup
        self.set_observers(setup.observers, setup.process_observers)

    @property
    def processor_setup(self) -> FrameProcessorSetup:
        """What this processor was set up with (Pipecat 1.14); raises before :meth:`setup`."""
        if self._setup is None:
            raise RuntimeError(f"{self} is not set up yet")
        return self._setup

    @property
    def pipeline_worker(self) -> WorkerResources | None:
        """The worker running this processor's pipeline (Pipecat 1.14), e.g. for
        ``self.pipeline_worker.app_resources``; None before setup or when set up by hand."""
        return self._setup.pipeline_worker if self._setup is not None else None

    @property
    def worker_runner(self) -> Any:
        """The runner hosting this processor's worker (Pipecat 1.14); None when none runs it."""
        worker = self.pipeline_worker
        return worker.worker_runner if worker is not None else None

    @property
    def pipeline_task(self) -> WorkerResources | None:
        """Deprecated alias of :attr:`pipeline_worker` (as in Pipecat 1.14)."""
        warnings.warn(
            "FrameProcessor.pipeline_task is deprecated; use pipeline_worker",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.pipeline_worker

    def set_observers(
        self, observers: Sequence[FrameObserver], process_observers: Sequence[ProcessObserver] = ()
    ) -> None:
        """Replace the observers (the worker calls this when one is added while running)."""
        self._observers = tuple(observers)
        self._process_observers = tuple(process_observers)
        self._update_hooks()

    def add_event_handler(self, event_name: str, handler: Callable[..., Any]) -> None:
        super().add_event_handler(event_name, handler)
        self._update_hooks()

    def remove_event_handler(self, event_name: str, handler: Callable[..., Any]) -> None:
        super().remove_event_handler(event_name, handler)
        self._update_hooks()

    def _update_hooks(self) -> None:
        self._push_hooks = any(self.has_event_handlers(e) for e in _PUSH_EVENTS)
        self._process_hooks = bool(self._process_observers) or any(
            self.has_event_handlers(e) for e in _PROCESS_EVENTS
        )
        self._inline = type(self)._plain_delivery and not self._process_hooks
        self._skip_input_audio = (
            type(self)._input_audio_bypass
            and self._inline
            and not self._push_hooks
            and not self._observers
            and self.input_audio_unused()
        )

    def input_audio_unused(self) -> bool:
        """Whether this instance, as configured, does nothing with the caller's audio but pass it
        on (checked when observers are set, i.e. at setup). Only asked of a class that declares
        :attr:`passes_input_audio`; override it where the answer depends on configuration."""
        return True

    passes_input_audio: ClassVar[bool] = False
    """Declared (``True``) in the class body that defines ``process_frame`` when that method
    does nothing with an ``InputAudioRawFrame`` going downstream but push it on unchanged. Then
    ``push_frame`` hands the caller's audio straight to the next processor that wants it
    (50 frames a second per call cross every processor of the pipeline otherwise). A subclass
    that overrides ``process_frame`` loses the declaration unless it repeats it. Never taken
    while this processor has observers, push or process hooks, a pause, or is cancelling."""

    _input_audio_bypass: ClassVar[bool] = False
    """Set per class by ``__init_subclass__``: the class's ``process_frame`` was defined in a
    body that declared :attr:`passes_input_audio`."""

    _plain_delivery = True
    """Whether this class delivers frames the base way (``queue_frame``/``_process_safely`` not
    overridden); set per class by ``__init_subclass__``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._plain_delivery = (
            cls.queue_frame is FrameProcessor.queue_frame
            and cls._process_safely is FrameProcessor._process_safely
        )
        owner = next(c for c in cls.__mro__ if "process_frame" in c.__dict__)
        cls._input_audio_bypass = (
            cls._plain_delivery and owner.__dict__.get("passes_input_audio") is True
        )

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
        if self._gate:
            if self._cancelling and not isinstance(frame, CancelFrame):
                return
            if (
                self._system_paused
                and isinstance(frame, SystemFrame)
                and not isinstance(frame, CancelFrame | FrameProcessorResumeFrame)
            ):
                self._held_system.append((frame, direction))
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
        if not frame.LIFECYCLE:
            return
        if isinstance(frame, StartFrame):
            self._started = True
            self._allow_interruptions = frame.allow_interruptions
            self._enable_metrics = frame.enable_metrics
            self._start_worker()
        elif isinstance(frame, InterruptionFrame):
            await self._handle_interruption()
        elif isinstance(frame, CancelFrame):
            self._cancelling = True
            self._gate = True
            self._queue.clear()
            self._held_system.clear()
            await cancel_and_wait(self._pause_watcher)
            if self._worker is not asyncio.current_task():
                await cancel_and_wait(self._worker)
                self._worker = None
        elif isinstance(frame, FrameProcessorPauseFrame | FrameProcessorPauseUrgentFrame):
            if frame.processor is self or getattr(frame.processor, "name", None) == self.name:
                await self.pause_processing_frames()
        elif isinstance(frame, FrameProcessorResumeFrame):
            if frame.processor is self or getattr(frame.processor, "name", None) == self.name:
                await self.resume_processing_frames()

    # ------------------------------------------------------------------ pausing

    async def pause_processing_frames(self) -> None:
        """Hold queued (data/control) frames until :meth:`resume_processing_frames`."""
        self._paused = True

    async def resume_processing_frames(self) -> None:
        self._paused = False
        if self._wakeup is not None:
            self._wakeup.set()

    async def pause_processing_system_frames(self) -> None:
        """Hold system frames too (except ``CancelFrame``, which always gets through)."""
        self._system_paused = True
        self._gate = True

    async def resume_processing_system_frames(self) -> None:
        self._system_paused = False
        self._gate = self._cancelling
        while self._held_system and not self._system_paused:
            frame, direction = self._held_system.popleft()
            await self.queue_frame(frame, direction)

    async def pause_processing_all_frames_until(
        self,
        ready: Callable[[], Awaitable[Any]],
        *,
        timeout: float = PAUSE_UNTIL_READY_TIMEOUT_SECS,  # noqa: ASYNC109
    ) -> None:
        """Hold every frame arriving here until ``ready()`` resolves (or ``timeout`` passes).

        For a processor that cannot act before something happens in the background (a
        connection): frames wait in order instead of being lost. The pause is always lifted,
        at the latest after ``timeout`` or at cancellation, so shutdown frames get through.
        """
        if self.direct:
            logger.warning("%s: a pass-through processor cannot hold frames", self)
            return
        await cancel_and_wait(self._pause_watcher)
        await self.pause_processing_system_frames()
        await self.pause_processing_frames()
        self._pause_watcher = self.create_task(self._lift_pause(ready, timeout), "pause")

    async def _lift_pause(self, ready: Callable[[], Awaitable[Any]], limit: float) -> None:
        try:
            await asyncio.wait_for(ready(), limit)
        except TimeoutError:
            logger.warning("%s: not ready after %.1fs, processing frames anyway", self, limit)
        finally:
            self._pause_watcher = None
            await self.resume_processing_system_frames()
            await self.resume_processing_frames()

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Pass ``frame`` to the next processor (downstream) or the previous one (upstream)."""
        if self._push_hooks:
            await self._push_with_events(frame, direction)
            return
        target = self._next if direction is FrameDirection.DOWNSTREAM else self._prev
        if target is None:
            return
        if self._observers:
            for observer in self._observers:
                observer.on_push_frame(self, target, frame, direction)
        if (
            target._skip_input_audio
            and frame.__class__ is InputAudioRawFrame
            and direction is FrameDirection.DOWNSTREAM
        ):
            wanted: FrameProcessor | None = target
            while wanted is not None and wanted._skip_input_audio and not wanted._gate:
                wanted = wanted._next
            if wanted is None:
                return  # the last of them would have pushed it into nothing
            target = wanted
        inline = target._inline and not target._gate
        if inline and (target.direct or isinstance(frame, SystemFrame)):
            # What queue_frame → _process_safely would do here, two coroutine calls fewer per
            # hop: inbound audio crosses every processor of a call 50 times a second.
            try:
                await target.process_frame(frame, direction)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await target._report_exception(frame, direction, exc)
            return
        await target.queue_frame(frame, direction)

    async def _push_with_events(self, frame: Frame, direction: FrameDirection) -> None:
        await self._call_event_handler("on_before_push_frame", frame)
        target = self._next if direction is FrameDirection.DOWNSTREAM else self._prev
        if target is not None:
            for observer in self._observers:
                observer.on_push_frame(self, target, frame, direction)
            await target.queue_frame(frame, direction)
        await self._call_event_handler("on_after_push_frame", frame)

    async def push_error(
        self,
        error: ErrorFrame | str | None = None,
        exception: BaseException | None = None,
        fatal: bool = False,
        force_treat_as_permanent: bool = False,
        *,
        error_msg: str | None = None,
        category: ErrorCategory | None = None,
        **kwargs: Any,
    ) -> None:
        """Report an error upstream to the task.

        Takes an ``ErrorFrame`` (the older API), a message with the optional ``exception``
        (added to the text) and ``fatal`` flag, or Pipecat 1.14's keywords: ``error_msg=`` (the
        frame's text as given, the exception and ``category`` kept beside it).
        ``force_treat_as_permanent``: this processor cannot work any more (``is_usable``
        becomes False; the worker's ``processor_unusable_policy`` decides what happens to the
        call). The ``on_error`` handlers get ``(self, frame)`` before the frame goes upstream
        (an exception in ``process_frame`` is reported here too).
        """
        if force_treat_as_permanent:
            await self.set_usable(False)
        if error is None:
            if error_msg is None:
                raise TypeError("push_error() needs an error or error_msg")
            error = ErrorFrame(error=error_msg, fatal=fatal, exception=exception, category=category)
        elif isinstance(error, str):
            text = f"{error}: {exception}" if exception is not None else error
            error = ErrorFrame(error=text, fatal=fatal, exception=exception, category=category)
        error.processor = self
        await self._call_event_handler("on_error", error)
        await self.push_frame(error, FrameDirection.UPSTREAM)

    async def push_error_frame(
        self, error: ErrorFrame, force_treat_as_permanent: bool = False, **kwargs: Any
    ) -> None:
        await self.push_error(error, force_treat_as_permanent=force_treat_as_permanent)

    # ------------------------------------------------------------------ broadcasting

    async def broadcast_frame(self, frame_cls: type[Frame], **kwargs: Any) -> None:
        """Push one new ``frame_cls(**kwargs)`` downstream and a twin upstream."""
        down = frame_cls(**kwargs)
        up = frame_cls(**kwargs)
        await self._push_twins(down, up)

    async def broadcast_frame_instance(self, frame: Frame) -> None:
        """Broadcast copies of a frame someone else made (each copy gets its own id)."""
        down = _copy_frame(frame)
        up = _copy_frame(frame)
        await self._push_twins(down, up)

    async def broadcast_interruption(self) -> None:
        """Drop this processor's queued interruptible work and interrupt both neighbours."""
        self._drop_interruptible_queued()
        await self.broadcast_frame(InterruptionFrame)

    async def _push_twins(self, down: Frame, up: Frame) -> None:
        down.broadcast_sibling_id = up.id
        up.broadcast_sibling_id = down.id
        await self.push_frame(down, FrameDirection.DOWNSTREAM)
        await self.push_frame(up, FrameDirection.UPSTREAM)

    # ------------------------------------------------------------------ internals

    async def _process_safely(self, frame: Frame, direction: FrameDirection) -> None:
        if self._process_hooks:
            await self._process_with_events(frame, direction)
            return
        try:
            await self.process_frame(frame, direction)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._report_exception(frame, direction, exc)

    async def _process_with_events(self, frame: Frame, direction: FrameDirection) -> None:
        for observer in self._process_observers:
            observer.on_process_frame(self, frame, direction)
        await self._call_event_handler("on_before_process_frame", frame)
        try:
            await self.process_frame(frame, direction)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._report_exception(frame, direction, exc)
        await self._call_event_handler("on_after_process_frame", frame)

    async def _report_exception(
        self, frame: Frame, direction: FrameDirection, exc: Exception
    ) -> None:
        logger.exception("%s%s: error processing %s", call_tag(), self, frame)
        if not isinstance(frame, ErrorFrame):
            # A processor that cannot start leaves a pipeline that can never work: fatal.
            await self.push_error(
                ErrorFrame(
                    error=f"{self}: {type(exc).__name__}: {exc}",
                    fatal=isinstance(frame, StartFrame),
                    unhandled=True,
                    exception=exc,
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
            while not queue or self._paused:
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
        await self._resume_after_interruption(self._stop_interrupted_work())

    def _drop_interruptible_queued(self) -> None:
        """Drop the queued frames an interruption may drop; keep the rest in order."""
        if self._queue:
            kept = [item for item in self._queue if not item[0].interruptible]
            self._queue.clear()
            self._queue.extend(kept)

    def _stop_interrupted_work(self) -> asyncio.Task[None] | None:
        """The part of an interruption that needs no await: drop queued interruptible frames
        and cancel the worker if the frame in progress is interruptible. Once cancelled the
        worker does nothing more (it raises at its next resumption); the returned task is for
        :meth:`_resume_after_interruption`."""
        self._drop_interruptible_queued()
        current = self._current
        worker = self._worker
        if worker is None or current is None or not current.interruptible:
            return None
        self._worker = None
        self._current = None
        worker.cancel()
        return worker

    async def _resume_after_interruption(self, worker: asyncio.Task[None] | None) -> None:
        """Wait for the cancelled worker to finish, then start a fresh one."""
        if worker is None:
            return
        if worker is not asyncio.current_task():
            try:
                await worker
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
        self._start_worker()


def _copy_frame(frame: Frame) -> Frame:
    """A shallow copy of ``frame`` with a fresh id (the dataclass fields that take arguments)."""
    values = {f.name: getattr(frame, f.name) for f in dataclasses.fields(frame) if f.init}
    copy = type(frame)(**values)
    if frame._metadata:
        copy.metadata = dict(frame._metadata)
    return copy
