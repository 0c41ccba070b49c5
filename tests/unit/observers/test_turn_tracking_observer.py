"""TurnTrackingObserver through a real worker, and the worker's lazy turn_tracking_observer."""

from __future__ import annotations

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    StartFrame,
    UserStartedSpeakingFrame,
)
from callpipe.observers.turn_tracking_observer import TurnTrackingObserver
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineTask
from callpipe.pipeline.worker import PipelineWorker

from ..pipeline.helpers import Recorder
from .helpers import ManualClock, Step, drive

Event = tuple[object, ...]


def record(observer: TurnTrackingObserver) -> list[Event]:
    events: list[Event] = []

    @observer.event_handler("on_turn_started")
    async def started(o: TurnTrackingObserver, turn: int) -> None:
        events.append(("started", turn))

    @observer.event_handler("on_turn_ended")
    async def ended(o: TurnTrackingObserver, turn: int, secs: float, interrupted: bool) -> None:
        events.append(("ended", turn, round(secs, 3), interrupted))

    return events


def bot_says(secs: float) -> list[Step]:
    return [BotStartedSpeakingFrame(), secs, BotStoppedSpeakingFrame()]


async def test_worker_property_tracks_answered_and_interrupted_turns() -> None:
    clock = ManualClock()
    worker = PipelineWorker(Pipeline([Recorder()]), clock=clock, idle_timeout_secs=None)
    observer = worker.turn_tracking_observer
    assert isinstance(observer, TurnTrackingObserver)
    assert worker.turn_tracking_observer is observer  # made once
    events = record(observer)
    await drive(
        worker,
        [
            1.0,
            *bot_says(2.0),  # the greeting: turn 1
            0.5,
            UserStartedSpeakingFrame(),  # the caller answers: turn 1 complete, turn 2
            1.0,
            BotStartedSpeakingFrame(),
            0.5,
            UserStartedSpeakingFrame(),  # barge-in: turn 2 interrupted, turn 3
            3.0,
        ],
        clock,
    )
    assert events == [
        ("started", 1),
        ("ended", 1, 3.5, False),
        ("started", 2),
        ("ended", 2, 1.5, True),
        ("started", 3),
        ("ended", 3, 3.0, True),  # still open when the call ended
    ]


async def test_a_quiet_bot_ends_the_turn_after_the_timeout() -> None:
    observer = TurnTrackingObserver(turn_end_timeout_secs=0.3)
    events = record(observer)
    worker = PipelineWorker(Pipeline([Recorder()]), observers=[observer], idle_timeout_secs=None)
    steps: list[Step] = [*bot_says(0.0), 0.01, *bot_says(0.0), 0.6]
    await drive(worker, steps)
    # The pause between the two replies was shorter than the timeout: one turn, not two.
    assert [e[:2] for e in events] == [("started", 1), ("ended", 1)]
    assert events[1][3] is False  # ended by the timeout, not by the EndFrame


async def test_caller_speaking_again_before_the_bot_answered_is_the_same_turn() -> None:
    observer = TurnTrackingObserver()
    events = record(observer)
    worker = PipelineWorker(Pipeline([Recorder()]), observers=[observer], idle_timeout_secs=None)
    await drive(worker, [UserStartedSpeakingFrame(), UserStartedSpeakingFrame()])
    assert [e[:2] for e in events] == [("started", 1), ("ended", 1)]


async def test_no_turn_tracking_work_unless_the_property_is_read() -> None:
    rec = Recorder()
    worker = PipelineWorker(Pipeline([rec]), idle_timeout_secs=None)
    await drive(worker, [UserStartedSpeakingFrame()])
    assert rec._observers == ()  # nothing watches frame pushes


def test_turn_tracking_can_be_switched_off() -> None:
    worker = PipelineWorker(Pipeline([Recorder()]), enable_turn_tracking=False)
    assert worker.turn_tracking_observer is None
    task = PipelineTask(Pipeline([Recorder()]))
    assert isinstance(task.turn_tracking_observer, TurnTrackingObserver)


async def test_reading_the_property_while_running_counts_from_the_next_turn() -> None:
    worker = PipelineWorker(Pipeline([Recorder()]), idle_timeout_secs=None)
    events: list[Event] = []

    @worker.event_handler("on_pipeline_started")
    async def started(w: PipelineWorker, frame: StartFrame) -> None:
        observer = w.turn_tracking_observer
        assert observer is not None
        observer.add_event_handler("on_turn_started", lambda o, n: events.append(("started", n)))

    await drive(worker, [0.01, UserStartedSpeakingFrame()])
    assert events == [("started", 1)]
