"""PipelineWorker: runs one pipeline (usually one call) from StartFrame to EndFrame/CancelFrame.

Pipecat 1.x calls this the worker (``pipecat.pipeline.worker``); the older API's ``PipelineTask``
(``callpipe.pipeline.task``) is the same class under its older name.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callpipe.clock import DEFAULT_CLOCK, Clock
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    BotSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    CancelWorkerFrame,
    EndFrame,
    EndWorkerFrame,
    ErrorFrame,
    Frame,
    HeartbeatFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    InterruptionWorkerFrame,
    LLMFullResponseEndFrame,
    StartFrame,
    StopFrame,
    StopWorkerFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.log import call_tag
from callpipe.observers.base_observer import BaseObserver
from callpipe.observers.turn_tracking_observer import TurnTrackingObserver
from callpipe.pipeline.call_tracing import CallTrace, start_call_trace
from callpipe.pipeline.pipeline import PipelineSink, PipelineSource
from callpipe.pipeline.task_observers import TASK_OBSERVERS
from callpipe.pipeline.turn_log import turn_observer
from callpipe.pipeline.worker_observer import WorkerObserver
from callpipe.processors.base_object import BaseObject, cancel_and_wait
from callpipe.processors.frame_processor import (
    FrameDirection,
    FrameObserver,
    FrameProcessor,
    FrameProcessorSetup,
    ProcessObserver,
    cleanup_processor,
    setup_processor,
)
from callpipe.processors.frameworks.rtvi import RTVIProcessor
from callpipe.utils.pydantic_docs import document_fields

logger = logging.getLogger(__name__)

_FEED_BATCH = 64  # frames fed from a non-empty inbox between two yields to the event loop

# What the worker does with a frame leaving the pipeline (bit flags, see PipelineWorker._kind).
_IDLE = 1
_REACHED = 2
_START = 4
_END = 8
_HEARTBEAT = 16
_WORKER_REQUEST = 32
_INTERRUPT_REQUEST = 64
_ERROR = 128

HEARTBEAT_SECS = 1.0
HEARTBEAT_MONITOR_SECS = 10.0


class ProcessorUnusablePolicy(Enum):
    """What the worker does when a processor reports it can no longer work.

    A processor says so with ``push_error(..., force_treat_as_permanent=True)`` (a rejected API
    key, say). CONTINUE: report it (``on_pipeline_error``) and carry on; END: end the call
    gracefully; CANCEL: cancel it now.
    """

    CONTINUE = "continue"
    END = "end"
    CANCEL = "cancel"


class PipelineParams(BaseModel):
    """Pipeline-wide settings carried to every processor by the StartFrame.

    Unknown keys are rejected: a misspelt option must not silently do nothing.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    allow_interruptions: bool = Field(
        default=True,
        description="Let the caller barge in: when the VAD hears them start, an "
        "InterruptionFrame cuts the bot off. False: the bot always finishes what it says.",
    )
    audio_in_sample_rate: int = Field(
        default=16000,
        description="Rate of the caller's audio inside the pipeline (InputAudioRawFrame). "
        "8000 for a phone bot keeps the 8 kHz line audio as it is.",
    )
    audio_out_sample_rate: int = Field(
        default=16000,
        description="Rate at which TTS services produce the bot's audio; the output transport "
        "resamples it once to the provider's wire rate. 8000 for a phone bot.",
    )
    enable_heartbeats: bool = Field(
        default=False,
        description="Send HeartbeatFrames through the pipeline and warn when one does not come "
        "back in time (a processor blocking the loop).",
    )
    enable_metrics: bool = Field(
        default=False,
        description="Push MetricsFrames (time to first byte per service, turn latency) down the "
        "pipeline. The process-wide registry behind /metrics records them either way.",
    )
    enable_usage_metrics: bool = Field(
        default=False,
        description="With enable_metrics, also report LLM tokens and TTS characters used.",
    )
    heartbeats_period_secs: float = Field(
        default=HEARTBEAT_SECS, description="Seconds between two heartbeats."
    )
    heartbeats_monitor_secs: float = Field(
        default=HEARTBEAT_MONITOR_SECS,
        description="How long a heartbeat may take to cross the pipeline before a warning.",
    )
    report_only_initial_ttfb: bool = Field(
        default=False,
        description="Report each service's time to first byte only for its first request.",
    )
    send_initial_empty_metrics: bool = Field(
        default=True,
        description="Push one empty MetricsFrame after the StartFrame (as Pipecat does).",
    )
    start_metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Copied into the StartFrame's metadata, for every processor to read.",
    )
    observers: list[Any] = Field(
        default_factory=list,
        description="Observers that see every frame pushed between processors (tracing, "
        "tests); added to the worker's own observers.",
    )


document_fields(PipelineParams)


@dataclass
class PipelineTaskParams:
    """What a runner hands ``run()`` (Pipecat's ``WorkerParams``); nothing is needed from it."""

    loop: asyncio.AbstractEventLoop | None = None


WorkerParams = PipelineTaskParams

DEFAULT_IDLE_FRAMES: tuple[type[Frame], ...] = (
    BotSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterimTranscriptionFrame,
    LLMFullResponseEndFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)

_EVENTS = (
    "on_pipeline_started",
    "on_pipeline_finished",
    "on_pipeline_ended",
    "on_pipeline_cancelled",
    "on_pipeline_error",
    "on_pipeline_timeout",
    "on_idle_timeout",
    "on_heartbeat_timeout",
    "on_frame_reached_upstream",
    "on_frame_reached_downstream",
    "on_setup_timeout",
)


class PipelineWorker(BaseObject):
    """Runs a pipeline: set up processors, push StartFrame, feed queued frames, tear down.

    Events: ``on_pipeline_started(worker, frame)``, ``on_pipeline_finished(worker, frame)`` (the
    EndFrame, StopFrame or CancelFrame that ended it), ``on_pipeline_ended``,
    ``on_pipeline_cancelled``, ``on_pipeline_error(worker, error_frame)``,
    ``on_pipeline_timeout(worker, frame)`` (a CancelFrame did not get through in
    ``cancel_timeout_secs``, or the StartFrame in ``start_timeout_secs``),
    ``on_setup_timeout`` (processors not set up in ``setup_timeout_secs``),
    ``on_idle_timeout``, ``on_heartbeat_timeout``,
    ``on_frame_reached_upstream/downstream(worker, frame)`` (only for the types given to
    ``set_reached_*_filter``).

    Errors: a fatal ``ErrorFrame`` cancels the worker; an exception that escaped a processor (a
    bug) ends it gracefully (``EndFrame``: queued audio plays out, the call is hung up) unless
    ``end_on_exception=False``; errors a service reports itself (a failed request) do not. A
    processor whose ``setup()`` raises is reported as a fatal ``ErrorFrame`` and the worker is
    cancelled before the pipeline starts; ``run()`` returns normally.

    Observers: ``BaseObserver`` s (Pipecat 1.x) get async ``FramePushed``/``FrameProcessed``
    events through a queue each; plain ``FrameObserver`` s (callpipe's synchronous protocol) are
    called inline. With none attached, processors do no observer work.

    Turn tracking: with ``enable_turn_tracking`` (the default), ``turn_tracking_observer`` gives
    a :class:`TurnTrackingObserver`, made and attached the first time it is read, so a bot that
    never reads it pays nothing per frame. Read it before ``run()`` for turn 1 to start with the
    ``StartFrame``; read later, counting starts when the caller next speaks.

    Tracing: with ``enable_tracing=True`` and OpenTelemetry installed (see
    :func:`callpipe.utils.tracing.setup.setup_tracing`), the call is recorded (the runner's record
    when it keeps one, else one made here) and exported as one trace when the pipeline ends:
    ``conversation`` (``conversation.id`` = ``conversation_id``, or a new UUID, plus
    ``additional_span_attributes``) → ``turn`` → ``stt``/``llm``/``tts``. Off (the default), the
    worker adds nothing.

    Idle timeout: with ``cancel_on_idle_timeout`` (the default) an idle worker cancels itself,
    and with ``cancel_runner_on_idle_timeout`` (also the default, as in Pipecat) the
    :class:`~callpipe.pipeline.runner.WorkerRunner` running it then cancels its other workers
    too; pass False for a side worker whose idleness should not end the others.

    Accepted and ignored (Pipecat 1.x options with nothing to do on a phone call here):
    ``enable_rtvi``, ``rtvi_processor``, ``rtvi_observer_params`` (no RTVI client on a phone
    call; ``rtvi`` gives the processor for event registration, see there),
    ``capabilities`` (stored), ``check_dangling_tasks``, ``task_manager`` (each processor owns
    its tasks here), ``handle_flush_frame``, ``exclude_frames`` (only with a bus).
    ``app_resources`` is stored and handed to function calls; ``tool_resources`` is its
    deprecated older name. ``bridged`` and ``active=False`` need Pipecat's worker bus, which
    callpipe does not have: they are refused with a :class:`~callpipe.errors.ConfigurationError`
    rather than ignored, since the pipeline would silently not be wired as the bot expects.
    """

    def __init__(
        self,
        pipeline: FrameProcessor,
        params: PipelineParams | None = None,
        *,
        observers: Sequence[FrameObserver | BaseObserver] | None = None,
        clock: Clock | None = None,
        idle_timeout_secs: float | None = 300.0,
        idle_timeout_frames: tuple[type[Frame], ...] = DEFAULT_IDLE_FRAMES,
        cancel_on_idle_timeout: bool = True,
        cancel_timeout_secs: float = 20.0,
        setup_timeout_secs: float = 20.0,
        start_timeout_secs: float = 20.0,
        end_on_exception: bool = True,
        name: str | None = None,
        conversation_id: str | None = None,
        additional_span_attributes: dict[str, Any] | None = None,
        app_resources: Any = None,
        enable_rtvi: bool | None = None,
        enable_turn_tracking: bool = True,
        enable_tracing: bool = False,
        check_dangling_tasks: bool = True,
        processor_unusable_policy: ProcessorUnusablePolicy = ProcessorUnusablePolicy.CONTINUE,
        cancel_runner_on_idle_timeout: bool = True,
        active: bool = True,
        bridged: tuple[str, ...] | None = None,
        exclude_frames: tuple[type[Frame], ...] | None = None,
        handle_flush_frame: bool | None = None,
        capabilities: Any = None,
        rtvi_processor: RTVIProcessor | None = None,
        rtvi_observer_params: Any = None,
        task_manager: Any = None,
        tool_resources: Any = None,
    ) -> None:
        if bridged is not None or not active:
            raise ConfigurationError(
                f"PipelineWorker({'bridged=' if bridged is not None else 'active='}...) needs "
                "Pipecat's worker bus, which callpipe does not provide"
            )
        if tool_resources is not None:
            warnings.warn(
                "tool_resources is deprecated: use app_resources",
                DeprecationWarning,
                stacklevel=2,
            )
            if app_resources is None:
                app_resources = tool_resources
        super().__init__(name=name)
        self._cancel_runner_on_idle_timeout = cancel_runner_on_idle_timeout
        self._enable_rtvi = enable_rtvi is not False
        self._rtvi: RTVIProcessor | None = rtvi_processor
        self._capabilities = capabilities
        self._idle_cancelled = False
        self._params = params or PipelineParams()
        self._sync_observers: list[FrameObserver] = []
        self._worker_observer = WorkerObserver(clock=clock)
        for observer in [*(observers or ()), *self._params.observers]:
            self._attach_observer(observer)
        turns = turn_observer()  # -v lines / softphone display: caller said, bot said, latency
        if turns is not None:
            self._attach_observer(turns)
        for observer in TASK_OBSERVERS.get():  # e.g. the runner's call recorder
            self._attach_observer(observer)
        self._enable_tracing = enable_tracing
        self._additional_span_attributes = dict(additional_span_attributes or {})
        self._call_trace: CallTrace | None = None
        if enable_tracing:
            self._call_trace = start_call_trace(
                conversation_id, self._additional_span_attributes, clock
            )
        self._clock = clock or DEFAULT_CLOCK
        self._idle_timeout_secs = idle_timeout_secs
        self._idle_frames = idle_timeout_frames
        self._cancel_on_idle_timeout = cancel_on_idle_timeout
        self._cancel_timeout_secs = cancel_timeout_secs
        self._setup_timeout_secs = setup_timeout_secs
        self._start_timeout_secs = start_timeout_secs
        self._end_on_exception = end_on_exception
        self._conversation_id = conversation_id
        self._app_resources = app_resources
        self.worker_runner: Any = None
        """The :class:`~callpipe.pipeline.runner.WorkerRunner` running this worker (set when it
        starts it; Pipecat 1.14's ``worker_runner``), None until then."""
        self._enable_turn_tracking = enable_turn_tracking
        self._turn_tracking: TurnTrackingObserver | None = None
        self._ending_on_error = False
        self._unusable_policy = processor_unusable_policy
        self._unusable: set[int] = set()
        self._pipeline = pipeline
        self._source = PipelineSource(self._from_upstream, name=f"{self.name}::Source")
        self._sink = PipelineSink(self._from_downstream, name=f"{self.name}::Sink")
        self._source.link(pipeline)
        pipeline.link(self._sink)
        self._processors: list[FrameProcessor] = []
        self._inbox: asyncio.Queue[tuple[Frame, FrameDirection]] = asyncio.Queue()
        self._finished = asyncio.Event()
        self._started = False
        self._running = False
        self._cancelled = False
        self._end_reason: Frame | None = None
        self._last_activity = 0.0
        self._last_heartbeat = 0.0
        self._cancel_watchdog: asyncio.Task[None] | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._finish_done = asyncio.Event()  # set after the on_pipeline_finished handlers ran
        self._timed_out = False
        self._reached_up: tuple[type[Frame], ...] = ()
        self._reached_down: tuple[type[Frame], ...] = ()
        self._kinds: dict[FrameDirection, dict[type[Frame], int]] = {
            FrameDirection.DOWNSTREAM: {},
            FrameDirection.UPSTREAM: {},
        }
        for event in _EVENTS:
            self._register_event_handler(event)

    @property
    def params(self) -> PipelineParams:
        return self._params

    @property
    def pipeline(self) -> FrameProcessor:
        return self._pipeline

    @property
    def app_resources(self) -> Any:
        return self._app_resources

    @property
    def capabilities(self) -> Any:
        """What the bot passed as ``capabilities`` (stored, not derived here)."""
        return self._capabilities

    @property
    def rtvi(self) -> RTVIProcessor:
        """Pipecat 1.x's RTVI processor of this worker (the one passed as ``rtvi_processor``,
        else one made on first read), for bots that register ``@task.rtvi.event_handler(...)``.
        It is not put in the pipeline: RTVI is a browser/mobile client protocol, a phone call has
        no RTVI client, so its events never fire (as with Pipecat on a telephony transport).
        Raises when ``enable_rtvi=False``, as Pipecat does."""
        if not self._enable_rtvi:
            raise ConfigurationError(f"{self}: RTVI is not enabled (enable_rtvi=False)")
        if self._rtvi is None:
            self._rtvi = RTVIProcessor()
        return self._rtvi

    @property
    def cancels_runner(self) -> bool:
        """Whether this worker was cancelled for idleness and asks its runner to cancel the
        other workers (``cancel_runner_on_idle_timeout``)."""
        return self._idle_cancelled and self._cancel_runner_on_idle_timeout

    @property
    def conversation_id(self) -> str | None:
        return self._conversation_id

    def has_finished(self) -> bool:
        return self._finished.is_set()

    @property
    def turn_tracking_observer(self) -> TurnTrackingObserver | None:
        """The worker's turn tracker (None with ``enable_turn_tracking=False``).

        Made and attached on first read: frames are only watched for bots that use it.
        """
        if self._turn_tracking is None and self._enable_turn_tracking:
            self._turn_tracking = TurnTrackingObserver()
            self.add_observer(self._turn_tracking)
        return self._turn_tracking

    # ------------------------------------------------------------------ observers, filters

    def add_observer(self, observer: FrameObserver | BaseObserver) -> None:
        """Attach an observer (before or while running)."""
        self._attach_observer(observer)
        if self._running:
            self._push_observers()

    async def remove_observer(self, observer: FrameObserver | BaseObserver) -> None:
        if isinstance(observer, BaseObserver):
            await self._worker_observer.remove(observer)
        elif observer in self._sync_observers:
            self._sync_observers.remove(observer)
        if self._running:
            self._push_observers()

    def set_reached_upstream_filter(self, types: tuple[type[Frame], ...]) -> None:
        self._reached_up = tuple(types)
        self._kinds[FrameDirection.UPSTREAM].clear()

    def set_reached_downstream_filter(self, types: tuple[type[Frame], ...]) -> None:
        self._reached_down = tuple(types)
        self._kinds[FrameDirection.DOWNSTREAM].clear()

    def add_reached_upstream_filter(self, types: tuple[type[Frame], ...]) -> None:
        self.set_reached_upstream_filter((*self._reached_up, *types))

    def add_reached_downstream_filter(self, types: tuple[type[Frame], ...]) -> None:
        self.set_reached_downstream_filter((*self._reached_down, *types))

    def _attach_observer(self, observer: FrameObserver | BaseObserver) -> None:
        if isinstance(observer, BaseObserver):
            self._worker_observer.add(observer)
        else:
            self._sync_observers.append(observer)

    def _observer_lists(self) -> tuple[tuple[FrameObserver, ...], tuple[ProcessObserver, ...]]:
        proxy = self._worker_observer
        pushes = (proxy,) if proxy.wants_pushes else ()
        processing = (proxy,) if proxy.wants_processing else ()
        return (*self._sync_observers, *pushes), processing

    def _push_observers(self) -> None:
        push, process = self._observer_lists()
        for processor in self._processors:
            processor.set_observers(push, process)

    # ------------------------------------------------------------------ feeding

    async def queue_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        self._inbox.put_nowait((frame, direction))

    async def queue_frames(
        self,
        frames: Iterable[Frame] | AsyncIterable[Frame],
        direction: FrameDirection = FrameDirection.DOWNSTREAM,
    ) -> None:
        if isinstance(frames, AsyncIterable):
            async for frame in frames:
                await self.queue_frame(frame, direction)
        else:
            for frame in frames:
                await self.queue_frame(frame, direction)

    async def stop_when_done(self) -> None:
        """End gracefully once everything queued so far has been processed."""
        await self.queue_frame(EndFrame())

    async def end(self, *, reason: str | None = None) -> None:
        """End gracefully (an ``EndFrame`` after what is already queued)."""
        await self.queue_frame(EndFrame(reason=reason))

    async def cancel(self, reason: str | None = None) -> None:
        """Stop now. Waits (bounded) until the pipeline has shut down, unless called from it."""
        if self._finished.is_set():
            return
        self._cancelled = True
        if not self._running:
            self._end_reason = CancelFrame(reason=reason)
            self._finished.set()
            return
        self._inbox.put_nowait((CancelFrame(reason=reason), FrameDirection.DOWNSTREAM))
        if asyncio.current_task() is self._feed_task:
            return
        try:
            await asyncio.wait_for(
                asyncio.shield(self._finished.wait()), self._cancel_timeout_secs + 1.0
            )
        except TimeoutError:
            logger.warning("%s: cancel did not finish in %.1fs", self, self._cancel_timeout_secs)

    # ------------------------------------------------------------------ running

    async def run(self, params: PipelineTaskParams | None = None) -> None:
        """Run until an EndFrame, StopFrame or CancelFrame has gone through the pipeline.

        A CancelFrame that does not get through (a processor swallowed or blocked on it) ends
        the run anyway after ``cancel_timeout_secs``, reported with ``on_pipeline_timeout``.
        """
        trace = self._call_trace
        if trace is None or self._finished.is_set():
            await self._run()
            return
        deactivate = trace.activate()  # tasks made from here on report to the call's record
        self._attach_observer(trace.observer)
        try:
            await self._run()
        finally:
            deactivate()
            end = self._end_reason
            reason = end.reason if isinstance(end, EndFrame | CancelFrame) else None
            trace.finish(reason)

    async def _run(self) -> None:
        if self._finished.is_set():
            return
        self._running = True
        loop = asyncio.get_running_loop()
        if self._clock is DEFAULT_CLOCK:
            self._clock = DEFAULT_CLOCK.bound(loop)  # one loop lookup, not one per reading
        push, process = self._observer_lists()
        proxy = self._worker_observer
        setup = FrameProcessorSetup(
            clock=self._clock,
            observers=push,
            process_observers=process,
            timer=proxy if proxy.wants_setup_timing else None,
            pipeline_worker=self,
        )
        self._processors = [self._source, *self._pipeline.processors_with_children(), self._sink]
        helpers: list[asyncio.Task[None]] = []
        try:
            self._worker_observer.start()
            start: Frame = self._start_frame()
            if not await self._setup_within_timeout(setup):
                start = CancelFrame(reason="setup failed")
                self._cancelled = True
            self._last_activity = self._last_heartbeat = self._clock.now()
            self._feed_task = loop.create_task(self._feed(start), name=f"{self}:feed")
            if self._idle_timeout_secs:
                helpers.append(loop.create_task(self._watch_idle(), name=f"{self}:idle"))
            if isinstance(start, StartFrame):
                helpers.append(loop.create_task(self._watch_start(start), name=f"{self}:start"))
            if self._params.enable_heartbeats:
                helpers.append(loop.create_task(self._heartbeats(), name=f"{self}:heartbeat"))
            feed = self._feed_task
            finished = loop.create_task(self._finish_done.wait())
            try:
                await asyncio.wait({feed, finished}, return_when=asyncio.FIRST_COMPLETED)
                if not feed.done() and not self._timed_out:
                    # The end frame went through; the feed loop is returning on its own.
                    await asyncio.wait({feed}, timeout=self._cancel_timeout_secs)
            finally:
                await cancel_and_wait(finished)
            if feed.done() and not feed.cancelled():
                feed.result()  # a bug in the worker itself: surface it
        finally:
            await cancel_and_wait(self._feed_task)
            await cancel_and_wait(self._cancel_watchdog)
            for helper in helpers:
                await cancel_and_wait(helper)
            self._finished.set()
            for processor in (self._source, self._pipeline, self._sink):
                await cleanup_processor(processor)  # containers clean up what they hold
            await self._worker_observer.stop()
            if self._turn_tracking is not None:
                await self._turn_tracking.cleanup()  # no end-of-turn timer outlives the run
            await self.wait_for_event_handlers(timeout=1.0)
            self._running = False

    async def _setup_within_timeout(self, setup: FrameProcessorSetup) -> bool:
        """Set processors up; one that blocks (connecting forever) must not hold the call."""
        try:
            async with asyncio.timeout(self._setup_timeout_secs):
                return await self._setup_processors(setup)
        except TimeoutError:
            logger.error(
                "%s%s: processors not set up in %.1fs (one blocked while connecting?)",
                call_tag(),
                self,
                self._setup_timeout_secs,
            )
            await self._call_event_handler("on_setup_timeout")
            return False

    async def _watch_start(self, frame: StartFrame) -> None:
        """Give up on a pipeline whose StartFrame does not get through in time."""
        await asyncio.sleep(self._start_timeout_secs)
        if self._started or self._finished.is_set():
            return
        logger.error(
            "%s%s: %s did not reach the end of the pipeline in %.1fs (blocked somewhere?)",
            call_tag(),
            self,
            frame,
            self._start_timeout_secs,
        )
        self._timed_out = True
        await self._call_event_handler("on_pipeline_timeout", frame)
        await self._finish(CancelFrame(reason="start timeout"))

    async def _setup_processors(self, setup: FrameProcessorSetup) -> bool:
        """Set every processor up once; a failure is reported as a fatal error (never raised).

        The pipeline sets up what it holds (and so on down), each processor once, as in
        Pipecat. Each setup is timed only when an observer asks for it
        (``on_processor_setup``, e.g. ``StartupTimingObserver``)."""
        for top in (self._source, self._pipeline, self._sink):
            try:
                await setup_processor(top, setup)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                processor = setup.failed[0] if setup.failed else top
                logger.exception("%s%s: setup of %s failed", call_tag(), self, processor)
                error = ErrorFrame(
                    error=f"{processor}: setup failed: {type(exc).__name__}: {exc}",
                    fatal=True,
                    processor=processor,
                    unhandled=True,
                    exception=exc,
                )
                await self._call_event_handler("on_pipeline_error", error)
                return False
        return True

    def _start_frame(self) -> StartFrame:
        p = self._params
        frame = StartFrame(
            audio_in_sample_rate=p.audio_in_sample_rate,
            audio_out_sample_rate=p.audio_out_sample_rate,
            allow_interruptions=p.allow_interruptions,
            enable_metrics=p.enable_metrics,
            enable_usage_metrics=p.enable_usage_metrics,
            report_only_initial_ttfb=p.report_only_initial_ttfb,
        )
        if p.start_metadata:
            frame.metadata = dict(p.start_metadata)
        return frame

    async def _feed(self, first: Frame) -> None:
        """Hand the first frame, then queued frames, to the pipeline until it has finished.

        Frames already waiting are taken without a task per frame (that round trip dominated
        the per-frame cost); only an empty inbox waits, racing the end of the pipeline. The
        loop still yields every ``_FEED_BATCH`` frames so a flood of frames cannot starve it.
        """
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        await self._deliver(first, FrameDirection.DOWNSTREAM)
        finished = loop.create_task(self._finished.wait())
        fed = 0
        try:
            while not self._finished.is_set():
                if inbox.empty():
                    getter = loop.create_task(inbox.get())
                    done, _ = await asyncio.wait(
                        {getter, finished}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter not in done:
                        await cancel_and_wait(getter)
                        break
                    frame, direction = getter.result()
                else:
                    frame, direction = inbox.get_nowait()
                    fed += 1
                    if fed % _FEED_BATCH == 0:
                        await asyncio.sleep(0)
                if frame.LIFECYCLE or direction is FrameDirection.UPSTREAM:
                    await self._deliver(frame, direction)  # a CancelFrame starts its watchdog
                else:
                    await self._source.queue_frame(frame, direction)
        finally:
            await cancel_and_wait(finished)

    async def _deliver(self, frame: Frame, direction: FrameDirection) -> None:
        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, CancelFrame) and self._cancel_watchdog is None:
                self._cancel_watchdog = asyncio.get_running_loop().create_task(
                    self._watch_cancel(frame), name=f"{self}:cancel-watchdog"
                )
            await self._source.queue_frame(frame, direction)
        else:
            await self._sink.queue_frame(frame, direction)

    async def _watch_cancel(self, frame: CancelFrame) -> None:
        """End the run if the CancelFrame has not come through in ``cancel_timeout_secs``."""
        try:
            await asyncio.wait_for(self._finished.wait(), self._cancel_timeout_secs)
        except TimeoutError:
            logger.warning(
                "%s%s: %s did not reach the end of the pipeline in %.1fs (a processor "
                "swallowed or blocked on it); stopping anyway",
                call_tag(),
                self,
                frame,
                self._cancel_timeout_secs,
            )
            self._timed_out = True
            await self._call_event_handler("on_pipeline_timeout", frame)
            await self._finish(frame)

    async def _watch_idle(self) -> None:
        assert self._idle_timeout_secs
        while True:
            deadline = self._last_activity + self._idle_timeout_secs
            if self._clock.now() < deadline:
                await self._clock.sleep_until(deadline)
                continue
            logger.info("%s: idle for %.0fs", self, self._idle_timeout_secs)
            await self._call_event_handler("on_idle_timeout")
            if self._cancel_on_idle_timeout:
                self._idle_cancelled = True
                self._inbox.put_nowait((CancelFrame(reason="idle"), FrameDirection.DOWNSTREAM))
                return
            self._last_activity = self._clock.now()  # warn again after another idle period

    async def _heartbeats(self) -> None:
        """Send a HeartbeatFrame every period; warn when none came through for the monitor time."""
        period = self._params.heartbeats_period_secs
        monitor = self._params.heartbeats_monitor_secs
        while True:
            now = self._clock.now()
            self._inbox.put_nowait((HeartbeatFrame(timestamp=now), FrameDirection.DOWNSTREAM))
            if now - self._last_heartbeat > monitor:
                logger.warning("%s: no heartbeat came through for %.1fs", self, monitor)
                await self._call_event_handler("on_heartbeat_timeout")
                self._last_heartbeat = now
            await self._clock.sleep(period)

    # ------------------------------------------------------------------ frames leaving

    def _kind(self, cls: type[Frame], direction: FrameDirection) -> int:
        """What the worker does with frames of ``cls`` leaving the pipeline (cached per type).

        One dict lookup per frame instead of a chain of isinstance tests: the ends of the
        pipeline see every frame, and almost all of them need nothing.
        """
        cache = self._kinds[direction]
        kind = cache.get(cls)
        if kind is None:
            downstream = direction is FrameDirection.DOWNSTREAM
            reached = self._reached_down if downstream else self._reached_up
            kind = (_IDLE if issubclass(cls, self._idle_frames) else 0) | (
                _REACHED if reached and issubclass(cls, reached) else 0
            )
            if issubclass(cls, EndWorkerFrame | StopWorkerFrame | CancelWorkerFrame):
                kind |= _WORKER_REQUEST
            elif issubclass(cls, InterruptionWorkerFrame):
                kind |= _INTERRUPT_REQUEST
            elif downstream and issubclass(cls, StartFrame):
                kind |= _START
            elif downstream and issubclass(cls, EndFrame | StopFrame | CancelFrame):
                kind |= _END
            elif downstream and issubclass(cls, HeartbeatFrame):
                kind |= _HEARTBEAT
            elif not downstream and issubclass(cls, ErrorFrame):
                kind |= _ERROR
            cache[cls] = kind
        return kind

    async def _from_downstream(self, frame: Frame, direction: FrameDirection) -> None:
        kind = self._kinds[direction].get(type(frame))
        if kind is None:
            kind = self._kind(type(frame), direction)
        if not kind:
            return
        if kind & _IDLE:
            self._last_activity = self._clock.now()
        if kind & _REACHED:
            await self._call_event_handler("on_frame_reached_downstream", frame)
        if kind & _START:
            self._started = True
            await self._call_event_handler("on_pipeline_started", frame)
            if self._worker_observer:
                self._worker_observer.pipeline_started()
        elif kind & _END:
            await self._finish(frame)
        elif kind & _HEARTBEAT:
            self._last_heartbeat = self._clock.now()
        elif kind & _WORKER_REQUEST:
            await self._worker_request(frame)
        elif kind & _INTERRUPT_REQUEST:
            await self._source.queue_frame(InterruptionFrame())

    async def _from_upstream(self, frame: Frame, direction: FrameDirection) -> None:
        kind = self._kinds[direction].get(type(frame))
        if kind is None:
            kind = self._kind(type(frame), direction)
        if not kind:
            return
        if kind & _IDLE:
            self._last_activity = self._clock.now()
        if kind & _REACHED:
            await self._call_event_handler("on_frame_reached_upstream", frame)
        if kind & _ERROR and isinstance(frame, ErrorFrame):
            await self._on_error(frame)
        elif kind & _WORKER_REQUEST:
            await self._worker_request(frame)
        elif kind & _INTERRUPT_REQUEST:
            await self._source.queue_frame(InterruptionFrame())

    async def _on_error(self, frame: ErrorFrame) -> None:
        if frame.unhandled:  # already logged with its traceback where it happened
            logger.debug("%s: error reported: %s", self, frame.error)
        else:  # reported on purpose (a service, the app): this is its one log line
            logger.error("%s%s: %s", call_tag(), self, frame.error)
        await self._call_event_handler("on_pipeline_error", frame)
        if frame.fatal:
            self._inbox.put_nowait((CancelFrame(reason=frame.error), FrameDirection.DOWNSTREAM))
        elif isinstance(frame.processor, FrameProcessor) and not frame.processor.is_usable:
            self._apply_unusable_policy(frame.processor)
        elif frame.unhandled and self._end_on_exception and not self._ending_on_error:
            self._ending_on_error = True
            logger.warning("%s%s: ending the call after an unhandled error", call_tag(), self)
            self._inbox.put_nowait((EndFrame(reason="error"), FrameDirection.DOWNSTREAM))

    def _apply_unusable_policy(self, processor: FrameProcessor) -> None:
        if id(processor) in self._unusable:
            return  # acted on once, not on every error that follows
        self._unusable.add(id(processor))
        policy = self._unusable_policy
        logger.error("%s%s: %s can no longer work (%s)", call_tag(), self, processor, policy.value)
        if policy is ProcessorUnusablePolicy.END:
            self._inbox.put_nowait(
                (EndFrame(reason="processor unusable"), FrameDirection.DOWNSTREAM)
            )
        elif policy is ProcessorUnusablePolicy.CANCEL:
            reason = f"{processor} unusable"
            self._inbox.put_nowait((CancelFrame(reason=reason), FrameDirection.DOWNSTREAM))

    async def _worker_request(self, frame: Frame) -> None:
        if isinstance(frame, EndWorkerFrame):
            self._inbox.put_nowait((EndFrame(reason=frame.reason), FrameDirection.DOWNSTREAM))
        elif isinstance(frame, StopWorkerFrame):
            self._inbox.put_nowait((StopFrame(), FrameDirection.DOWNSTREAM))
        elif isinstance(frame, CancelWorkerFrame):
            self._inbox.put_nowait((CancelFrame(reason=frame.reason), FrameDirection.DOWNSTREAM))

    async def _finish(self, frame: Frame) -> None:
        if self._finished.is_set():
            return
        self._end_reason = frame
        self._finished.set()
        try:
            await self._call_event_handler("on_pipeline_finished", frame)
            if isinstance(frame, CancelFrame):
                await self._call_event_handler("on_pipeline_cancelled", frame)
            else:
                await self._call_event_handler("on_pipeline_ended", frame)
        finally:
            self._finish_done.set()

    @property
    def end_frame(self) -> Frame | None:
        """The frame that ended the worker (EndFrame, StopFrame or CancelFrame)."""
        return self._end_reason
