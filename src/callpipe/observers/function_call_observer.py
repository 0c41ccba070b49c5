"""Pipecat 1.x ``FunctionCallObserver``: each function call from request to outcome.

A call is reported when the LLM asks for it (started), when its handler runs (in progress)
and when it settles (completed, failed, timed out or cancelled). The moments can be far apart
and a call need not reach all of them, so each is its own event rather than one summary.
Arguments are included by default; results only with ``include_results=True`` (they may hold
whatever a caller told the bot).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from callpipe.frames.frames import (
    Frame,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
)
from callpipe.observers.base_observer import BaseObserver, FramePushed
from callpipe.processors.frame_processor import FrameDirection


class FunctionCallEventKind(StrEnum):
    """Where a call has got to."""

    STARTED = "function_call_started"
    IN_PROGRESS = "function_call_in_progress"
    COMPLETED = "function_call_completed"
    FAILED = "function_call_failed"
    TIMED_OUT = "function_call_timed_out"
    CANCELLED = "function_call_cancelled"


class FunctionCallEvent(BaseModel):
    """One moment of one call (Unix ``timestamp``).

    ``group_id`` and ``blocking`` (the conversation waits for it) are set when the call goes in
    progress, which also carries ``started_at``; the settling moment carries
    ``in_progress_at``, ``result`` (if asked for) or ``error``.
    """

    kind: FunctionCallEventKind
    function_name: str
    tool_call_id: str
    timestamp: float
    group_id: str | None = None
    blocking: bool | None = None
    arguments: Any | None = None
    started_at: float | None = None
    in_progress_at: float | None = None
    result: Any | None = None
    error: str | None = None


class FunctionCallObserver(BaseObserver):
    """Event ``on_function_call_event(observer, event)`` with a :class:`FunctionCallEvent`."""

    def __init__(
        self,
        *,
        include_arguments: bool = True,
        include_results: bool = False,
        time_source: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(observe_every_push=False, **kwargs)
        self._arguments = include_arguments
        self._results = include_results
        self._now = time_source
        self._started: dict[str, float] = {}
        self._in_progress: dict[str, float] = {}
        self._register_event_handler("on_function_call_event")

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        # Function-call frames are broadcast as two twins: report the downstream one.
        if frame.broadcast_sibling_id is not None and data.direction is FrameDirection.UPSTREAM:
            return
        for event in self._events(frame):
            await self._call_event_handler("on_function_call_event", event)

    def _events(self, frame: Frame) -> list[FunctionCallEvent]:
        now = self._now()
        if isinstance(frame, FunctionCallsStartedFrame):
            events = []
            for call in frame.function_calls:
                self._started[call.tool_call_id] = now
                events.append(
                    FunctionCallEvent(
                        kind=FunctionCallEventKind.STARTED,
                        function_name=call.function_name,
                        tool_call_id=call.tool_call_id,
                        timestamp=now,
                        arguments=call.arguments if self._arguments else None,
                    )
                )
            return events
        if isinstance(frame, FunctionCallInProgressFrame):
            self._in_progress[frame.tool_call_id] = now
            event = FunctionCallEvent(
                kind=FunctionCallEventKind.IN_PROGRESS,
                function_name=frame.function_name,
                tool_call_id=frame.tool_call_id,
                timestamp=now,
                group_id=frame.group_id,
                blocking=frame.cancel_on_interruption,  # a call that outlives barge-in is async
                arguments=frame.arguments if self._arguments else None,
                started_at=self._started.pop(frame.tool_call_id, None),
            )
            return [event]
        if isinstance(frame, FunctionCallResultFrame):
            if frame.properties is not None and not frame.properties.is_final:
                return []  # an interim update from a call that keeps running
            failed = frame.error is not None
            kind = FunctionCallEventKind.FAILED if failed else FunctionCallEventKind.COMPLETED
            result = frame.result if self._results and not failed else None
            return [
                self._settled(
                    kind, frame.function_name, frame.tool_call_id, now, result, frame.error
                )
            ]
        if isinstance(frame, FunctionCallCancelFrame):
            # Only a deadline asks for inference after cancelling; an interruption does not.
            kind = (
                FunctionCallEventKind.TIMED_OUT
                if frame.run_llm
                else FunctionCallEventKind.CANCELLED
            )
            return [self._settled(kind, frame.function_name, frame.tool_call_id, now, None, None)]
        return []

    def _settled(
        self,
        kind: FunctionCallEventKind,
        name: str,
        call_id: str,
        now: float,
        result: Any,
        error: str | None,
    ) -> FunctionCallEvent:
        self._started.pop(call_id, None)
        return FunctionCallEvent(
            kind=kind,
            function_name=name,
            tool_call_id=call_id,
            timestamp=now,
            in_progress_at=self._in_progress.pop(call_id, None),
            result=result,
            error=error,
        )
