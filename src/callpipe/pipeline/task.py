"""PipelineTask: runs one pipeline (usually one call) from StartFrame to EndFrame/CancelFrame."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callpipe.clock import DEFAULT_CLOCK, Clock
from callpipe.frames.frames import (
    BotSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    CancelTaskFrame,
    EndFrame,
    EndTaskFrame,
    ErrorFrame,
    Frame,
    InterimTranscriptionFrame,
    LLMFullResponseEndFrame,
    StartFrame,
    StopFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.log import call_tag
from callpipe.pipeline.pipeline import PipelineSink, PipelineSource
from callpipe.pipeline.task_observers import TASK_OBSERVERS
from callpipe.pipeline.turn_log import turn_observer
from callpipe.processors.base_object import BaseObject, cancel_and_wait
from callpipe.processors.frame_processor import (
    FrameDirection,
    FrameObserver,
    FrameProcessor,
    FrameProcessorSetup,
)
from callpipe.utils.pydantic_docs import document_fields

logger = logging.getLogger(__name__)

_FEED_BATCH = 64  # frames fed from a non-empty inbox between two yields to the event loop


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
    enable_metrics: bool = Field(
        default=False,
        description="Push MetricsFrames (time to first byte per service, turn latency) down the "
        "pipeline. The process-wide registry behind /metrics records them either way.",
    )
    enable_usage_metrics: bool = Field(
        default=False,
        description="With enable_metrics, also report LLM tokens and TTS characters used.",
    )
    report_only_initial_ttfb: bool = Field(
        default=False,
        description="Report each service's time to first byte only for its first request.",
    )
    observers: list[Any] = Field(
        default_factory=list,
        description="FrameObservers that see every frame pushed between processors (tracing, "
        "tests); added to the task's own observers.",
    )


document_fields(PipelineParams)


DEFAULT_IDLE_FRAMES: tuple[type[Frame], ...] = (
    BotSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterimTranscriptionFrame,
    LLMFullResponseEndFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)


class PipelineTask(BaseObject):
    """Runs a pipeline: set up processors, push StartFrame, feed queued frames, tear down.

    Events: ``on_pipeline_started(task, frame)``, ``on_pipeline_finished(task, frame)`` (the
    EndFrame, StopFrame or CancelFrame that ended it), ``on_pipeline_ended``,
    ``on_pipeline_cancelled``, ``on_pipeline_error(task, error_frame)``, ``on_idle_timeout``.

    Errors: a fatal ``ErrorFrame`` cancels the task; an exception that escaped a processor (a
    bug) ends it gracefully (``EndFrame``: queued audio plays out, the call is hung up) unless
    ``end_on_exception=False``; errors a service reports itself (a failed request) do not.
    """

    def __init__(
        self,
        pipeline: FrameProcessor,
        params: PipelineParams | None = None,
        *,
        observers: Sequence[FrameObserver] | None = None,
        clock: Clock | None = None,
        idle_timeout_secs: float | None = 300.0,
        idle_timeout_frames: tuple[type[Frame], ...] = DEFAULT_IDLE_FRAMES,
        cancel_on_idle_timeout: bool = True,
        cancel_timeout_secs: float = 20.0,
        end_on_exception: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._params = params or PipelineParams()
        self._observers = list(observers or ()) + list(self._params.observers)
        turns = turn_observer()  # -v lines / softphone display: caller said, bot said, latency
        if turns is not None:
            self._observers.append(turns)
        self._observers.extend(TASK_OBSERVERS.get())  # e.g. the runner's call record
        self._clock = clock or DEFAULT_CLOCK
        self._idle_timeout_secs = idle_timeout_secs
        self._idle_frames = idle_timeout_frames
        self._cancel_on_idle_timeout = cancel_on_idle_timeout
        self._cancel_timeout_secs = cancel_timeout_secs
        self._end_on_exception = end_on_exception
        self._ending_on_error = False
        self._pipeline = pipeline
        self._source = PipelineSource(self._from_upstream, name=f"{self.name}::Source")
        self._sink = PipelineSink(self._from_downstream, name=f"{self.name}::Sink")
        self._source.link(pipeline)
        pipeline.link(self._sink)
        self._inbox: asyncio.Queue[tuple[Frame, FrameDirection]] = asyncio.Queue()
        self._finished = asyncio.Event()
        self._started = False
        self._running = False
        self._cancelled = False
        self._end_reason: Frame | None = None
        self._last_activity = 0.0
        self._run_task: asyncio.Task[Any] | None = None
        for event in (
            "on_pipeline_started",
            "on_pipeline_finished",
            "on_pipeline_ended",
            "on_pipeline_cancelled",
            "on_pipeline_error",
            "on_idle_timeout",
        ):
            self._register_event_handler(event)

    @property
    def params(self) -> PipelineParams:
        return self._params

    @property
    def pipeline(self) -> FrameProcessor:
        return self._pipeline

    def has_finished(self) -> bool:
        return self._finished.is_set()

    # ------------------------------------------------------------------ feeding

    async def queue_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        self._inbox.put_nowait((frame, direction))

    async def queue_frames(self, frames: Iterable[Frame] | AsyncIterable[Frame]) -> None:
        if isinstance(frames, AsyncIterable):
            async for frame in frames:
                await self.queue_frame(frame)
        else:
            for frame in frames:
                await self.queue_frame(frame)

    async def stop_when_done(self) -> None:
        """End gracefully once everything queued so far has been processed."""
        await self.queue_frame(EndFrame())

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
        if asyncio.current_task() is self._run_task:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._finished.wait()), self._cancel_timeout_secs)
        except TimeoutError:
            logger.warning("%s: cancel did not finish in %.1fs", self, self._cancel_timeout_secs)

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Run until an EndFrame, StopFrame or CancelFrame has gone through the pipeline."""
        if self._finished.is_set():
            return
        self._running = True
        self._run_task = asyncio.current_task()
        setup = FrameProcessorSetup(clock=self._clock, observers=tuple(self._observers))
        processors = [self._source, *self._pipeline.processors_with_children(), self._sink]
        idle_task: asyncio.Task[None] | None = None
        try:
            for processor in processors:
                await processor.setup(setup)
            self._last_activity = self._clock.now()
            await self._source.queue_frame(self._start_frame())
            if self._idle_timeout_secs:
                idle_task = asyncio.get_running_loop().create_task(
                    self._watch_idle(), name=f"{self}:idle"
                )
            await self._feed()
        finally:
            await cancel_and_wait(idle_task)
            self._finished.set()
            for processor in processors:
                try:
                    await processor.cleanup()
                except Exception:
                    logger.exception("%s: cleanup of %s failed", self, processor)
            await self.wait_for_event_handlers(timeout=1.0)
            self._running = False

    def _start_frame(self) -> StartFrame:
        p = self._params
        return StartFrame(
            audio_in_sample_rate=p.audio_in_sample_rate,
            audio_out_sample_rate=p.audio_out_sample_rate,
            allow_interruptions=p.allow_interruptions,
            enable_metrics=p.enable_metrics,
            enable_usage_metrics=p.enable_usage_metrics,
            report_only_initial_ttfb=p.report_only_initial_ttfb,
        )

    async def _feed(self) -> None:
        """Hand queued frames to the pipeline until it has finished.

        Frames already waiting are taken without a task per frame (that round trip dominated
        the per-frame cost); only an empty inbox waits, racing the end of the pipeline. The
        loop still yields every ``_FEED_BATCH`` frames so a flood of frames cannot starve it.
        """
        loop = asyncio.get_running_loop()
        inbox = self._inbox
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
                if direction is FrameDirection.DOWNSTREAM:
                    await self._source.queue_frame(frame, direction)
                else:
                    await self._sink.queue_frame(frame, direction)
        finally:
            await cancel_and_wait(finished)

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
                self._inbox.put_nowait((CancelFrame(reason="idle"), FrameDirection.DOWNSTREAM))
            return

    # ------------------------------------------------------------------ frames leaving

    async def _from_downstream(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, self._idle_frames):
            self._last_activity = self._clock.now()
        if isinstance(frame, StartFrame):
            self._started = True
            await self._call_event_handler("on_pipeline_started", frame)
        elif isinstance(frame, EndFrame | StopFrame | CancelFrame):
            await self._finish(frame)

    async def _from_upstream(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, self._idle_frames):
            self._last_activity = self._clock.now()
        if isinstance(frame, ErrorFrame):
            if frame.unhandled:  # already logged with its traceback where it happened
                logger.debug("%s: error reported: %s", self, frame.error)
            else:  # reported on purpose (a service, the app): this is its one log line
                logger.error("%s%s: %s", call_tag(), self, frame.error)
            await self._call_event_handler("on_pipeline_error", frame)
            if frame.fatal:
                self._inbox.put_nowait((CancelFrame(reason=frame.error), FrameDirection.DOWNSTREAM))
            elif frame.unhandled and self._end_on_exception and not self._ending_on_error:
                self._ending_on_error = True
                logger.warning("%s%s: ending the call after an unhandled error", call_tag(), self)
                self._inbox.put_nowait((EndFrame(reason="error"), FrameDirection.DOWNSTREAM))
        elif isinstance(frame, EndTaskFrame):
            self._inbox.put_nowait((EndFrame(reason=frame.reason), FrameDirection.DOWNSTREAM))
        elif isinstance(frame, CancelTaskFrame):
            self._inbox.put_nowait((CancelFrame(reason=frame.reason), FrameDirection.DOWNSTREAM))

    async def _finish(self, frame: Frame) -> None:
        if self._finished.is_set():
            return
        self._end_reason = frame
        self._finished.set()
        await self._call_event_handler("on_pipeline_finished", frame)
        if isinstance(frame, CancelFrame):
            await self._call_event_handler("on_pipeline_cancelled", frame)
        else:
            await self._call_event_handler("on_pipeline_ended", frame)

    @property
    def end_frame(self) -> Frame | None:
        """The frame that ended the task (EndFrame, StopFrame or CancelFrame)."""
        return self._end_reason
