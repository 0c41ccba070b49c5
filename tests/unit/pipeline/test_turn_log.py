"""``-v``'s per-turn lines: caller said, bot said, latency breakdown; numbers masked."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    MetricsFrame,
    TranscriptionFrame,
    TTSTextFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineTask
from callpipe.pipeline.turn_log import TURN_LOGGER, TurnLogObserver, mask_numbers
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_mask_numbers() -> None:
    assert mask_numbers("call me on +1 415 555 0123 please") == "call me on …23 please"
    assert mask_numbers("card 4111-1111-1111-1111") == "card …11"
    assert mask_numbers("room 42 at 10:30") == "room 42 at 10:30"


def test_one_line_per_turn_with_latency_breakdown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=TURN_LOGGER)
    clock = Clock()
    observer = TurnLogObserver(clock)
    a, b = cast(FrameProcessor, object()), cast(FrameProcessor, object())

    def push(frame: Frame) -> None:
        for _ in range(3):  # the same frame seen at every hop counts once
            observer.on_push_frame(a, b, frame, FrameDirection.DOWNSTREAM)

    push(VADUserStoppedSpeakingFrame(stop_secs=0.8))
    push(TranscriptionFrame("my number is 07700 900123", "u", "t"))
    push(MetricsFrame(data=[TTFBMetricsData(processor="OpenAILLMService#0", value=0.31)]))
    push(MetricsFrame(data=[TTFBMetricsData(processor="CartesiaTTSService#0", value=0.12)]))
    clock.t += 0.5  # bot audio starts 0.5 s after the VAD reported: 1.3 s after quiet
    push(BotStartedSpeakingFrame())
    push(TTSTextFrame("Thanks,"))
    push(TTSTextFrame("I'll call you back."))
    push(BotStoppedSpeakingFrame())
    lines = [r.getMessage() for r in caplog.records if r.name == TURN_LOGGER]
    assert lines == [
        "caller said: 'my number is …23'",
        "latency: 1.30s caller quiet → bot audio "
        "(VAD wait 0.80s, LLM first byte 0.31s, TTS first byte 0.12s)",
        'bot said: "Thanks, I\'ll call you back."',
    ]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == TURN_LOGGER)


def test_task_adds_the_observer_only_when_turn_logging_is_on() -> None:
    logger = logging.getLogger(TURN_LOGGER)
    before = logger.level
    try:
        logger.setLevel(logging.INFO)
        quiet = PipelineTask(Pipeline([]))
        logger.setLevel(logging.DEBUG)
        verbose = PipelineTask(Pipeline([]))
    finally:
        logger.setLevel(before)
    observers: Any = (quiet._sync_observers, verbose._sync_observers)
    assert not any(isinstance(o, TurnLogObserver) for o in observers[0])
    assert any(isinstance(o, TurnLogObserver) for o in observers[1])


def test_events_for_the_softphone_are_unmasked_and_need_no_logging() -> None:
    events: list[dict[str, Any]] = []
    clock = Clock()
    observer = TurnLogObserver(clock, emit=events.append, log=False)
    a = cast(FrameProcessor, object())
    for frame in (
        VADUserStoppedSpeakingFrame(stop_secs=0.5),
        TranscriptionFrame("call 07700 900123", "u", "t"),
        BotStartedSpeakingFrame(),
        TTSTextFrame("Sure."),
        BotStoppedSpeakingFrame(),
    ):
        observer.on_push_frame(a, a, frame, FrameDirection.DOWNSTREAM)
    assert events == [
        {"type": "caller", "text": "call 07700 900123"},  # the caller's own words, on their page
        {"type": "latency", "secs": 0.5, "vad_wait": 0.5, "first_byte": {}},
        {"type": "bot", "text": "Sure."},
    ]
