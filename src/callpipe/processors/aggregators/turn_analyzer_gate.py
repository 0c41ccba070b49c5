"""The user aggregator's end-of-turn-model gate (``TurnAnalyzerUserTurnStopStrategy``).

The aggregator ends a turn on ``UserStoppedSpeakingFrame`` (VAD stop) + final transcript. With
a turn-analyzer stop strategy, each such frame goes through :meth:`TurnAnalyzerGate.user_stopped`
first: the model runs once and either lets the stop through or holds it. The stop frames are
system frames, processed inline in the upstream processor's push, so the analysis runs in a task
of its own (the model itself on a worker thread): the caller's audio keeps flowing meanwhile,
and a verdict reached after the caller spoke again is discarded.
A held stop is dropped when the caller speaks again (the turn goes on, its transcripts kept) or
let through once the caller stayed quiet for the strategy's ``fallback_secs`` (the analyzer's
own silence count, or a loop timer if audio stops arriving).

Per packet the gate costs one call into the analyzer's buffer copy (:meth:`audio`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from callpipe.frames.frames import Frame, MetricsFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy,
)

logger = logging.getLogger(__name__)

EndTurn = Callable[[Frame, FrameDirection, float], Awaitable[None]]
"""Ends the turn: the held stop frame, its direction, and when the caller went quiet (clock)."""


class TurnAnalyzerGate:
    """Holds the caller's stop while the end-of-turn model says they are not done."""

    def __init__(
        self,
        strategy: TurnAnalyzerUserTurnStopStrategy,
        processor: FrameProcessor,
        end_turn: EndTurn,
    ) -> None:
        self._strategy = strategy
        self._processor = processor
        self._end_turn = end_turn
        self._user_speaking = False
        self._generation = 0  # bumped at every VAD start/stop: a verdict is for its own stop only
        self._held: tuple[Frame, FrameDirection, float] | None = None
        self._undecided = False  # a stop was reported and the turn has not ended yet
        self._audio_seen = False
        self._warned_no_audio = False
        self._timer: asyncio.TimerHandle | None = None

    @property
    def held(self) -> bool:
        return self._held is not None

    def start(self, sample_rate: int) -> None:
        self._strategy.set_sample_rate(sample_rate)

    def audio(self, audio: bytes) -> bool:
        """Per packet: buffer it. True when a held turn should now end (quiet ran out)."""
        self._audio_seen = True
        done = self._strategy.append_audio(audio, self._user_speaking)
        return done and self._held is not None

    def vad_started(self, start_secs: float) -> None:
        """The VAD's start delay: the analyzer keeps that much more audio before speech."""
        self._strategy.update_vad_start_secs(start_secs)

    def vad_stopped(self, stop_secs: float) -> None:
        """The VAD's stop delay: how much quiet ends the audio the model will see."""
        self._strategy.update_vad_stop_secs(stop_secs)

    def user_started(self) -> bool:
        """The caller speaks. True when this continues the current turn (held or undecided)."""
        self._user_speaking = True
        self._generation += 1
        resumed, self._undecided = self._undecided, False
        self._held = None
        self._cancel_timer()
        if resumed:
            logger.debug("%s: caller went on; the turn continues", self._strategy)
        return resumed

    def user_stopped(self, frame: Frame, direction: FrameDirection) -> None:
        """The VAD reports the caller quiet: decide (in a task) whether the turn ended."""
        self._user_speaking = False
        self._generation += 1
        self._undecided = True
        stopped_at = self._processor.clock.now()
        decide = self._decide(frame, direction, stopped_at, self._generation)
        self._processor.create_task(decide, "end-of-turn-analysis")

    async def _decide(
        self, frame: Frame, direction: FrameDirection, stopped_at: float, generation: int
    ) -> None:
        if not self._audio_seen:
            # No caller audio reaches the aggregator (e.g. an STT without audio passthrough):
            # the model has nothing to judge, and holding every turn for the fallback would
            # add seconds to each answer. End the turn as a plain VAD stop, and say why once.
            if not self._warned_no_audio:
                self._warned_no_audio = True
                logger.warning(
                    "%s: no caller audio reaches the user aggregator; turns end at VAD stop",
                    self._strategy,
                )
            complete, metrics = True, None
        else:
            complete, metrics = await self._strategy.analyze()
        if metrics is not None and self._processor.metrics_enabled:
            await self._processor.push_frame(MetricsFrame(data=[metrics]))
        if generation != self._generation:
            return  # the caller spoke again while the model ran: the turn goes on
        if complete:
            self._undecided = False
            await self._end_turn(frame, direction, stopped_at)
            return
        self._held = (frame, direction, stopped_at)
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._strategy.fallback_secs, self._on_timer)
        logger.debug("%s: caller not done yet; holding the turn", self._strategy)

    def _on_timer(self) -> None:
        self._timer = None
        self._processor.create_task(self.release(), "turn-analyzer-fallback")

    async def release(self) -> None:
        """End a held turn (the fallback quiet ran out)."""
        self._cancel_timer()
        held, self._held = self._held, None
        if held is None:
            return
        self._undecided = False
        self._strategy.clear()
        await self._end_turn(*held)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self) -> None:
        self._cancel_timer()
        self._held = None
        self._undecided = False
        await self._strategy.cleanup()
