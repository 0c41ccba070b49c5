"""UserBotLatency, Speaking, Error, FunctionCall and ServiceMetrics observers in a real worker."""

from __future__ import annotations

from typing import Any

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    FunctionCallCancelFrame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    MetricsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData, TTFBMetricsData
from callpipe.observers.base_observer import BaseObserver
from callpipe.observers.error_observer import ErrorObserver
from callpipe.observers.function_call_observer import FunctionCallEventKind, FunctionCallObserver
from callpipe.observers.service_metrics_observer import (
    ServiceLatencyKind,
    ServiceMetricsObserver,
    ServiceUsageKind,
)
from callpipe.observers.speaking_observer import SpeakingObserver, SpeechEventKind
from callpipe.observers.user_bot_latency_observer import (
    LatencyBreakdown,
    MeasuredFrom,
    UserBotLatencyObserver,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.frame_processor import FrameDirection
from callpipe.utils.errors import ErrorCategory

from ..pipeline.helpers import Recorder
from .helpers import Step, drive


class Now:
    """A ``time_source`` the test moves by hand (its float steps go to the pipeline clock)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def collect(observer: BaseObserver, *events: str) -> list[tuple[str, Any]]:
    got: list[tuple[str, Any]] = []
    for name in events:
        observer.add_event_handler(name, lambda o, *args, _n=name: got.append((_n, *args)))
    return got


async def run(observer: BaseObserver, steps: list[Step]) -> None:
    rec = Recorder(name="rec")
    worker = PipelineWorker(Pipeline([rec]), observers=[observer], idle_timeout_secs=None)
    await drive(worker, steps)


async def test_user_bot_latency_measures_from_the_caller_going_quiet() -> None:
    now = Now()
    observer = UserBotLatencyObserver(time_source=now)
    got = collect(
        observer, "on_latency_measured", "on_latency_breakdown", "on_first_bot_speech_latency"
    )

    class Clocked(Recorder):
        """Moves ``now`` as frames go by: 0.4s of VAD decision, 0.3s to release, 0.5s answer."""

        async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
            if isinstance(frame, UserStoppedSpeakingFrame):
                now.t += 0.3
            elif isinstance(frame, BotStartedSpeakingFrame):
                now.t += 0.5
            elif isinstance(frame, MetricsFrame):
                now.t += 0.1
            await super().process_frame(frame, direction)

    worker = PipelineWorker(Pipeline([Clocked()]), observers=[observer], idle_timeout_secs=None)
    await drive(
        worker,
        [
            VADUserStartedSpeakingFrame(),  # caller spoke first: no greeting wait
            VADUserStoppedSpeakingFrame(stop_secs=0.4),
            UserStoppedSpeakingFrame(),
            MetricsFrame(data=[TTFBMetricsData(processor="llm#0", value=0.2)]),
            BotStartedSpeakingFrame(),
        ],
    )
    names = [g[0] for g in got]
    assert names == ["on_latency_measured", "on_latency_breakdown"]
    assert round(got[0][1], 3) == 1.3  # 0.4 VAD + 0.3 release + 0.1 + 0.5
    breakdown = got[1][1]
    assert isinstance(breakdown, LatencyBreakdown)
    assert breakdown.measured_from is MeasuredFrom.USER_SILENCE
    assert round(breakdown.user_turn_secs or 0, 3) == 0.7
    assert [(t.processor, t.duration_secs) for t in breakdown.ttfb] == [("llm#0", 0.2)]
    assert round(breakdown.total_secs, 3) == 1.3


async def test_user_bot_latency_reports_the_greeting_wait_once() -> None:
    now = Now()
    observer = UserBotLatencyObserver(time_source=now)
    got = collect(observer, "on_first_bot_speech_latency", "on_latency_measured")

    class Answer(Recorder):
        async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
            if isinstance(frame, BotStartedSpeakingFrame):
                now.t += 1.5
            await super().process_frame(frame, direction)

    worker = PipelineWorker(Pipeline([Answer()]), observers=[observer], idle_timeout_secs=None)
    await drive(worker, [BotStartedSpeakingFrame(), BotStartedSpeakingFrame()])
    assert [(n, round(v, 3)) for n, v in got] == [("on_first_bot_speech_latency", 1.5)]


async def test_an_interruption_drops_what_the_cancelled_reply_measured() -> None:
    observer = UserBotLatencyObserver()
    got = collect(observer, "on_latency_breakdown")
    await run(
        observer,
        [
            VADUserStartedSpeakingFrame(),
            VADUserStoppedSpeakingFrame(stop_secs=0.2),
            MetricsFrame(data=[TTFBMetricsData(processor="stale", value=0.2)]),
            InterruptionFrame(),
            MetricsFrame(data=[TTFBMetricsData(processor="fresh", value=0.1)]),
            BotStartedSpeakingFrame(),
        ],
    )
    assert [t.processor for t in got[0][1].ttfb] == ["fresh"]


async def test_speaking_observer_reports_each_moment_with_its_start() -> None:
    now = Now()
    observer = SpeakingObserver(time_source=now)
    got = collect(observer, "on_speech_event")
    await run(
        observer,
        [
            VADUserStartedSpeakingFrame(start_secs=0.2),
            UserStartedSpeakingFrame(),
            VADUserStoppedSpeakingFrame(stop_secs=0.8),
            UserStoppedSpeakingFrame(),
            BotStartedSpeakingFrame(),
            InterruptionFrame(),
            BotStoppedSpeakingFrame(),
        ],
    )
    events = [e for _, e in got]
    assert [e.kind for e in events] == [
        SpeechEventKind.USER_SPEECH_STARTED,
        SpeechEventKind.USER_TURN_STARTED,
        SpeechEventKind.USER_SPEECH_STOPPED,
        SpeechEventKind.USER_TURN_STOPPED,
        SpeechEventKind.BOT_SPEECH_STARTED,
        SpeechEventKind.INTERRUPTION,
        SpeechEventKind.BOT_SPEECH_STOPPED,
    ]
    assert round(events[0].timestamp, 3) == 99.8  # when speech began, not when VAD was sure
    assert round(events[2].timestamp, 3) == 99.2 and round(events[2].started_at, 3) == 99.8
    assert events[3].started_at == 100.0 and events[6].started_at == 100.0
    assert events[5].started_at is None


async def test_error_observer_names_the_processor_that_raised() -> None:
    observer = ErrorObserver(time_source=lambda: 7.0)
    got = collect(observer, "on_error")
    rec = Recorder(name="rec")
    worker = PipelineWorker(Pipeline([rec]), observers=[observer], idle_timeout_secs=None)
    error = ErrorFrame(error="boom", processor=rec, exception=ValueError("x"))
    limited = ErrorFrame(error="HTTP 429", processor=rec, category=ErrorCategory.RATE_LIMIT)
    await drive(worker, [(error, FrameDirection.UPSTREAM), (limited, FrameDirection.UPSTREAM)])
    assert len(got) == 2
    event = got[0][1]
    assert (event.message, event.processor, event.exception_type) == ("boom", "rec", "ValueError")
    assert event.processor_usable is True and event.timestamp == 7.0
    assert '"message":"boom"' in event.model_dump_json()
    assert event.category is ErrorCategory.UNKNOWN
    assert got[1][1].category is ErrorCategory.RATE_LIMIT


async def test_function_call_observer_follows_a_call_from_request_to_outcome() -> None:
    now = Now()
    observer = FunctionCallObserver(time_source=now, include_results=True)
    got = collect(observer, "on_function_call_event")
    call = FunctionCallFromLLM("lookup", "c1", {"q": 1}, None)
    twin = FunctionCallResultFrame(function_name="lookup", tool_call_id="c1", result="twin")
    twin.broadcast_sibling_id = 1  # the upstream copy of a broadcast result: not reported
    await run(
        observer,
        [
            FunctionCallsStartedFrame(function_calls=[call]),
            FunctionCallInProgressFrame(
                function_name="lookup", tool_call_id="c1", cancel_on_interruption=True
            ),
            (twin, FrameDirection.UPSTREAM),
            FunctionCallResultFrame(function_name="lookup", tool_call_id="c1", result={"n": 3}),
            FunctionCallCancelFrame(function_name="other", tool_call_id="c2"),
        ],
    )
    events = [e for _, e in got]
    assert [e.kind for e in events] == [
        FunctionCallEventKind.STARTED,
        FunctionCallEventKind.IN_PROGRESS,
        FunctionCallEventKind.COMPLETED,
        FunctionCallEventKind.CANCELLED,
    ]
    assert events[0].arguments == {"q": 1} and events[1].started_at == 100.0
    assert events[1].blocking is True
    assert events[2].in_progress_at == 100.0 and events[2].result == {"n": 3}


async def test_service_metrics_observer_makes_one_record_per_measurement() -> None:
    observer = ServiceMetricsObserver(time_source=lambda: 5.0)
    got = collect(observer, "on_service_latency", "on_service_usage")
    await run(
        observer,
        [
            MetricsFrame(
                data=[
                    TTFBMetricsData(processor="stt#0", model="nova", value=0.3),
                    LLMUsageMetricsData(processor="llm#0", value=LLMTokenUsage(3, 2, 5)),
                ]
            )
        ],
    )
    assert [name for name, _ in got] == ["on_service_latency", "on_service_usage"]
    latency, usage = got[0][1], got[1][1]
    assert (latency.kind, latency.processor, latency.model, latency.seconds) == (
        ServiceLatencyKind.TTFB,
        "stt#0",
        "nova",
        0.3,
    )
    assert (usage.kind, usage.total_tokens, usage.timestamp) == (ServiceUsageKind.LLM, 5, 5.0)
