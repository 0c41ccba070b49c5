"""Pipecat 1.x ``UserBotLatencyObserver``: how long the caller waited for the bot to answer.

The wait runs from the moment the caller fell silent (the VAD's stop, less the ``stop_secs``
of silence it needed to be sure) to the bot starting to speak. Alongside each measurement
comes a :class:`LatencyBreakdown`: each service's time to first byte (when the pipeline runs
with ``enable_metrics=True``), how long the turn took to be released, and the function calls
that ran in between.

Left out from Pipecat: the breakdown's ``contributions`` timeline (it relies on
provider-specific markers and text-aggregation metrics callpipe's services do not report) and
``text_aggregation`` (always None).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    ClientConnectedFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InterruptionFrame,
    MetricsFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.observers.base_observer import BaseObserver, FramePushed
from callpipe.processors.frame_processor import FrameDirection


class TTFBBreakdownMetrics(BaseModel):
    """One service's time to first byte in a cycle; ``start_time`` is a Unix time."""

    processor: str
    model: str | None = None
    start_time: float
    duration_secs: float


class TextAggregationBreakdownMetrics(BaseModel):
    """Sentence aggregation time (not reported by callpipe's services; kept for the type)."""

    processor: str
    start_time: float
    duration_secs: float


class FunctionCallMetrics(BaseModel):
    """One function call that ran during the cycle, from in progress to result."""

    function_name: str
    start_time: float
    duration_secs: float


class MeasuredFrom(StrEnum):
    """What a measured wait started from: the caller going quiet, or the call being answered."""

    USER_SILENCE = "user_silence"
    CLIENT_CONNECTED = "client_connected"


class LatencyBreakdown(BaseModel):
    """What is known about one wait, sent with ``on_latency_breakdown``.

    ``user_turn_secs``: from the caller going quiet to the turn being released
    (``UserStoppedSpeakingFrame``: VAD silence, final transcript, turn analysis).
    ``total_secs``: the measured wait itself.
    """

    ttfb: list[TTFBBreakdownMetrics] = Field(default_factory=list)
    measured_from: MeasuredFrom | None = None
    total_secs: float = 0.0
    text_aggregation: TextAggregationBreakdownMetrics | None = None
    user_turn_start_time: float | None = None
    user_turn_secs: float | None = None
    function_calls: list[FunctionCallMetrics] = Field(default_factory=list)


class UserBotLatencyObserver(BaseObserver):
    """Measures the caller's wait for each answer.

    Events:

    - ``on_latency_measured(observer, latency_seconds)``: caller quiet → bot speaking, per turn;
    - ``on_first_bot_speech_latency(observer, latency_seconds)``: once, the wait for the
      greeting, from the ``ClientConnectedFrame`` or else from the pipeline having started (a
      phone call is answered by then); skipped if the caller speaks first;
    - ``on_latency_breakdown(observer, breakdown)``: with either of the above.

    ``time_source`` (seconds) lets a test place events without waiting.
    """

    def __init__(
        self,
        *,
        max_frames: int | None = None,
        time_source: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(observe_every_push=False, **kwargs)
        del max_frames  # accepted for Pipecat code; each frame is seen once anyway
        self._now = time_source
        self._user_quiet_at: float | None = None
        self._user_turn: float | None = None
        self._greeting_from: float | None = None
        self._greeting_done = False
        self._client_connected = False
        self._ttfb: list[TTFBBreakdownMetrics] = []
        self._calls_running: dict[str, tuple[str, float]] = {}
        self._calls: list[FunctionCallMetrics] = []
        self._register_event_handler("on_latency_measured")
        self._register_event_handler("on_latency_breakdown")
        self._register_event_handler("on_first_bot_speech_latency")

    async def on_pipeline_started(self) -> None:
        if self._greeting_from is None and not self._greeting_done:
            self._greeting_from = self._now()

    async def on_push_frame(self, data: FramePushed) -> None:
        if data.direction is not FrameDirection.DOWNSTREAM:
            return
        frame = data.frame
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._user_quiet_at = None
            self._user_turn = None
            self._greeting_done = True  # the caller spoke first: no greeting wait to report
            self._reset()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            decided_at = frame.timestamp or self._now()  # callpipe's VAD leaves it at 0
            self._user_quiet_at = decided_at - frame.stop_secs
            self._user_turn = None
        elif isinstance(frame, UserStoppedSpeakingFrame):
            if self._user_quiet_at is not None:
                self._user_turn = self._now() - self._user_quiet_at
        elif isinstance(frame, BotStartedSpeakingFrame):
            await self._bot_started()
        elif isinstance(frame, MetricsFrame):
            self._collect_ttfb(frame)
        elif isinstance(frame, FunctionCallInProgressFrame):
            self._calls_running[frame.tool_call_id] = (frame.function_name, self._now())
        elif isinstance(frame, FunctionCallResultFrame):
            running = self._calls_running.pop(frame.tool_call_id, None)
            if running is not None:
                name, started = running
                self._calls.append(
                    FunctionCallMetrics(
                        function_name=name, start_time=started, duration_secs=self._now() - started
                    )
                )
        elif isinstance(frame, InterruptionFrame):
            self._reset()  # what the cancelled reply measured no longer counts
        elif isinstance(frame, ClientConnectedFrame):
            if not self._client_connected and not self._greeting_done:
                self._client_connected = True
                self._greeting_from = self._now()

    @property
    def _measuring(self) -> bool:
        return self._user_quiet_at is not None or (
            self._greeting_from is not None and not self._greeting_done
        )

    def _collect_ttfb(self, frame: MetricsFrame) -> None:
        if not self._measuring:
            return
        now = self._now()
        for item in frame.data:
            if isinstance(item, TTFBMetricsData) and item.value > 0:
                self._ttfb.append(
                    TTFBBreakdownMetrics(
                        processor=item.processor,
                        model=item.model,
                        start_time=now - item.value,
                        duration_secs=item.value,
                    )
                )

    async def _bot_started(self) -> None:
        now = self._now()
        if self._greeting_from is not None and not self._greeting_done:
            self._greeting_done = True
            wait = now - self._greeting_from
            await self._call_event_handler("on_first_bot_speech_latency", wait)
            await self._send_breakdown(MeasuredFrom.CLIENT_CONNECTED, wait, None)
        if self._user_quiet_at is not None:
            quiet_at, self._user_quiet_at = self._user_quiet_at, None
            wait = now - quiet_at
            await self._call_event_handler("on_latency_measured", wait)
            await self._send_breakdown(MeasuredFrom.USER_SILENCE, wait, quiet_at)

    async def _send_breakdown(
        self, anchor: MeasuredFrom, wait: float, quiet_at: float | None
    ) -> None:
        breakdown = LatencyBreakdown(
            ttfb=list(self._ttfb),
            measured_from=anchor,
            total_secs=wait,
            user_turn_start_time=quiet_at,
            user_turn_secs=self._user_turn if quiet_at is not None else None,
            function_calls=list(self._calls),
        )
        await self._call_event_handler("on_latency_breakdown", breakdown)
        self._reset()
        self._user_turn = None

    def _reset(self) -> None:
        self._ttfb = []
        self._calls_running = {}
        self._calls = []
