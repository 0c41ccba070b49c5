"""UserTurnProcessor: one place that decides the caller's turns, for several aggregators.

Pipecat 1.14's "external turn management": when more than one context aggregator follows the
same caller (a ``ParallelPipeline`` with two LLMs, say), put a ``UserTurnProcessor`` after the
STT and give every aggregator ``LLMUserAggregatorParams(user_turn_strategies=
ExternalUserTurnStrategies())``. The processor decides each turn once; the aggregators follow
its ``UserStartedSpeakingFrame`` / ``UserStoppedSpeakingFrame`` and each writes the turn and
runs its LLM once.

Every frame passes through, except the ones below. The turn model is the user aggregator's
(VAD + transcripts; see :mod:`callpipe.turns.user_turn_strategies`), read from the same
strategy objects:

- **Start.** ``VADUserTurnStartStrategy``: the caller's speech starts the turn.
  ``TranscriptionUserTurnStartStrategy`` / ``MinWordsUserTurnStartStrategy``: a transcript
  (interim too, with ``use_interim``) starts a turn when none is open. While the bot speaks,
  ``min_words`` holds the turn, and the barge-in, until a transcript has that many words;
  shorter transcripts are dropped ("uh-huh" reaches no context). ``ExternalUserTurnStartStrategy``:
  a ``ProposedUserStartedSpeakingFrame`` starts the turn (the proposal goes no further), and a
  ``UserStartedSpeakingFrame`` from before is adopted (passed on, not announced again).
- **Stop.** ``SpeechTimeoutUserTurnStopStrategy``: once the caller stopped, the turn ends as
  soon as the final transcript is in, or ``user_speech_timeout`` later if any transcript came
  (``wait_for_transcript=False``: even without one); an STT's reported latency
  (``STTMetadataFrame``) stretches that wait as in the aggregator.
  ``TurnAnalyzerUserTurnStopStrategy``: the smart-turn model decides first whether the caller
  finished (the aggregator's :class:`~callpipe.processors.aggregators.turn_analyzer_gate.
  TurnAnalyzerGate`, fed the caller's audio here). ``ExternalUserTurnStopStrategy``: a
  ``ProposedUserStoppedSpeakingFrame`` ends the turn, and a ``UserStoppedSpeakingFrame`` from
  before is adopted. A turn still open ``user_turn_stop_timeout`` seconds after the caller went
  quiet (transcripts restart the count) is ended anyway, after ``on_user_turn_stop_timeout``.
- **Frames out.** A turn start is announced with ``UserStartedSpeakingFrame`` and, when the
  start strategy enables interruptions (and the pipeline allows them), an ``InterruptionFrame``
  that cuts the bot off; a turn end with ``UserStoppedSpeakingFrame``. Both go downstream to the
  aggregators. They go upstream too only when no VAD runs before this processor: callpipe's
  transport VAD (``vad_analyzer`` in the transport params) and ``VADProcessor`` already tell
  the processors before it (the STT), with their own ``UserStarted/StoppedSpeakingFrame`` and
  barge-in. Those, arriving here, are the caller's speech signal: they are consumed (the
  aggregators get this processor's frames instead, one per turn), and the ``InterruptionFrame``
  such a VAD pushes with its start is replaced by this processor's own decision.
- **Events.** ``on_user_turn_started(processor, strategy)``,
  ``on_user_turn_inference_triggered(processor, strategy)`` then
  ``on_user_turn_stopped(processor, strategy)`` (strategy ``None`` for a stop timeout, which
  fires only the latter), ``on_user_turn_stop_timeout(processor)``,
  ``on_user_turn_idle(processor)`` (``user_idle_timeout`` seconds of silence after the bot
  finished; 0 disables).

Strategies it does not run (a wake phrase, the eager end of turn, turn completion by the LLM,
custom subclasses of the base strategies) are named in a warning at construction: give those to
the aggregators instead. ``UserTurnController`` is not provided; the logic lives here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    STTMetadataFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.processors.aggregators.llm_response import transcripts_queued
from callpipe.processors.aggregators.turn_analyzer_gate import TurnAnalyzerGate
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.turns.user_idle_controller import UserIdleController
from callpipe.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy,
)
from callpipe.turns.user_turn_strategies import (
    DEFAULT_SPEECH_TIMEOUT,
    BaseUserTurnStartStrategy,
    BaseUserTurnStopStrategy,
    EagerUserTurnStopStrategy,
    ExternalUserTurnStartStrategy,
    ExternalUserTurnStopStrategy,
    MinWordsUserTurnStartStrategy,
    SpeechTimeoutUserTurnStopStrategy,
    TranscriptionUserTurnStartStrategy,
    UserTurnStartedParams,
    UserTurnStrategies,
    VADUserTurnStartStrategy,
    first_of,
)

logger = logging.getLogger(__name__)


_START_TYPES = (
    VADUserTurnStartStrategy,
    TranscriptionUserTurnStartStrategy,
    MinWordsUserTurnStartStrategy,
    ExternalUserTurnStartStrategy,
)
_STOP_TYPES = (
    SpeechTimeoutUserTurnStopStrategy,
    ExternalUserTurnStopStrategy,
    TurnAnalyzerUserTurnStopStrategy,
)


def _unsupported(strategies: UserTurnStrategies) -> list[str]:
    """Names of the strategies this processor does not run."""
    names: list[str] = []
    for start in strategies.start or ():
        if type(start) not in _START_TYPES:
            names.append(type(start).__name__)
    for stop in strategies.stop or ():
        if isinstance(stop, EagerUserTurnStopStrategy):
            names.append(f"{type(stop).__name__} (its turn ends are followed, not answered early)")
        elif type(stop) not in _STOP_TYPES:
            names.append(type(stop).__name__)
    return names


class UserTurnProcessor(FrameProcessor):
    """Decides the caller's turns once for every aggregator after it (module docstring)."""

    def __init__(
        self,
        *,
        user_turn_strategies: UserTurnStrategies | None = None,
        user_turn_stop_timeout: float = 5.0,
        user_idle_timeout: float = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        strategies = user_turn_strategies or UserTurnStrategies()
        self._strategies = strategies
        self._stop_timeout = user_turn_stop_timeout
        unsupported = _unsupported(strategies)
        if unsupported:
            logger.warning(
                "%s: UserTurnProcessor does not run %s. Give them to the aggregators' "
                "user_turn_strategies instead (a subclass of a supported strategy is read as "
                "that strategy; its own frame logic is not called).",
                self,
                ", ".join(unsupported),
            )
        start = strategies.start or []
        stop = strategies.stop or []
        self._vad_start = first_of(start, VADUserTurnStartStrategy)
        self._transcript_start: (
            TranscriptionUserTurnStartStrategy | MinWordsUserTurnStartStrategy | None
        ) = next(
            (
                s
                for s in start
                if isinstance(s, TranscriptionUserTurnStartStrategy | MinWordsUserTurnStartStrategy)
            ),
            None,
        )
        self._external_start = first_of(start, ExternalUserTurnStartStrategy)
        self._min_words = strategies.min_words
        self._speech_stop = first_of(stop, SpeechTimeoutUserTurnStopStrategy)
        self._external_stop = first_of(stop, ExternalUserTurnStopStrategy)
        analyzer = first_of(stop, TurnAnalyzerUserTurnStopStrategy)
        self._analyzer = analyzer
        self._turn_gate = (
            TurnAnalyzerGate(analyzer, self, self._analyzer_verdict)
            if analyzer is not None
            else None
        )
        timeout = strategies.speech_timeout
        self._speech_timeout = DEFAULT_SPEECH_TIMEOUT if timeout is None else timeout
        waiter = self._speech_stop or analyzer
        self._wait_for_transcript = waiter is None or waiter.wait_for_transcript

        self._bot_speaking = False
        self._vad_upstream = False  # a VAD before this processor announces speech itself
        self._absorb_interruption = False  # that VAD's barge-in for the start just consumed
        self._speaking = False  # the caller, by the VAD (or the frames that stand for it)
        self._vad_stop_secs = 0.0
        # The turn: open from its start to its stop.
        self._turn_open = False
        self._speech_reported = False  # the caller's speech was reported in this turn
        self._speech_ended = False  # ... and they finished (the stop waits for the words)
        self._final = False  # a final transcript came, with no interim after it
        self._heard = False  # any transcript came in this turn
        self._speech_timer: asyncio.TimerHandle | None = None
        self._stop_timer: asyncio.TimerHandle | None = None
        self._idle = UserIdleController(user_idle_timeout, self._on_idle)
        for event in (
            "on_user_turn_started",
            "on_user_turn_stopped",
            "on_user_turn_stop_timeout",
            "on_user_turn_idle",
            "on_user_turn_inference_triggered",
        ):
            self._register_event_handler(event)

    @property
    def user_turn_strategies(self) -> UserTurnStrategies:
        return self._strategies

    def input_audio_unused(self) -> bool:
        return self._turn_gate is None  # only the turn analyzer listens to the caller's audio

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InputAudioRawFrame):
            gate = self._turn_gate
            if gate is not None and gate.audio(frame.audio):
                await gate.release()
            await self.push_frame(frame, direction)
            return
        if (
            isinstance(frame, InterruptionFrame)
            and self._absorb_interruption
            and direction is FrameDirection.DOWNSTREAM
        ):
            # The upstream VAD's barge-in for the start just consumed: this processor decided.
            self._absorb_interruption = False
            return
        await super().process_frame(frame, direction)
        self._idle.process_frame(frame)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if self._turn_gate is not None:
                self._turn_gate.start(frame.audio_in_sample_rate)
            return
        if isinstance(frame, EndFrame | CancelFrame):
            await self._close()
            await self.push_frame(frame, direction)
            return
        if direction is FrameDirection.UPSTREAM:
            self._track_bot(frame)
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._vad_upstream = True
            if self._turn_gate is not None:
                self._turn_gate.vad_started(frame.start_secs)
            await self.push_frame(frame, direction)
            await self._caller_started()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._vad_upstream = True
            self._vad_stop_secs = max(0.0, frame.stop_secs)
            if self._turn_gate is not None:
                self._turn_gate.vad_stopped(frame.stop_secs)
            await self.push_frame(frame, direction)
            await self._caller_stopped()
        elif isinstance(frame, UserStartedSpeakingFrame):
            await self._upstream_started(frame, direction)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            await self._upstream_stopped(frame, direction)
        elif isinstance(frame, TranscriptionFrame | InterimTranscriptionFrame):
            await self._on_transcript(frame, direction)
        elif isinstance(frame, ProposedUserStartedSpeakingFrame):
            if self._external_start is None:
                await self.push_frame(frame, direction)  # for a resolver further down
                return
            self._speaking = True
            self._cancel_timers()
            if not self._turn_open:
                params = self._external_start.turn_started_params()
                await self._start_turn(self._external_start, params, interrupt=True)
        elif isinstance(frame, ProposedUserStoppedSpeakingFrame):
            if self._external_stop is None:
                await self.push_frame(frame, direction)
                return
            self._speaking = False
            await self._stop_turn(self._external_stop)
        else:
            if isinstance(frame, STTMetadataFrame) and frame.ttfs_p99_latency > 0:
                self._strategies.update_stt_timeout(frame.ttfs_p99_latency)
            self._track_bot(frame)
            await self.push_frame(frame, direction)

    def _track_bot(self, frame: Frame) -> None:
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False

    # ------------------------------------------------------------------ the caller's speech

    async def _upstream_started(
        self, frame: UserStartedSpeakingFrame, direction: FrameDirection
    ) -> None:
        """A ``UserStartedSpeakingFrame`` from before this processor."""
        self._vad_upstream = True
        if self._external_start is not None:
            # Decided elsewhere: adopted, not announced again; its sender interrupted the bot.
            await self.push_frame(frame, direction)
            self._speaking = True
            self._cancel_timers()
            if not self._turn_open:
                params = UserTurnStartedParams(
                    enable_interruptions=False, enable_user_speaking_frames=False
                )
                await self._start_turn(self._external_start, params, interrupt=False)
            return
        # The transport's (or a VADProcessor's) own turn frame: the caller's speech, consumed.
        # Its barge-in follows when the pipeline allows interruptions; this processor decides.
        self._absorb_interruption = self.interruptions_allowed
        await self._caller_started()

    async def _upstream_stopped(
        self, frame: UserStoppedSpeakingFrame, direction: FrameDirection
    ) -> None:
        self._vad_upstream = True
        self._absorb_interruption = False
        if self._external_stop is not None:
            await self.push_frame(frame, direction)
            self._speaking = False
            await self._stop_turn(self._external_stop, announce=False)
            return
        await self._caller_stopped()

    async def _caller_started(self) -> None:
        """The caller speaks (VAD start, or the turn frame standing for it)."""
        if self._speaking:
            return
        self._speaking = True
        self._cancel_timers()
        self._speech_ended = False
        if self._turn_gate is not None:
            self._turn_gate.user_started()  # a held or undecided turn goes on
        if self._turn_open or self._vad_start is None:
            return
        if self._bot_speaking and self._min_words > 1:
            logger.debug("%s: holding the turn until %d words", self, self._min_words)
            return
        params = self._vad_start.turn_started_params(
            enable_interruptions=self._strategies.interruptions_enabled
        )
        await self._start_turn(self._vad_start, params, interrupt=True)

    async def _caller_stopped(self) -> None:
        """The caller went quiet (VAD stop, or the turn frame standing for it)."""
        if not self._speaking:
            return
        self._speaking = False
        self._absorb_interruption = False
        if not self._turn_open:
            return
        self._speech_reported = True
        self._arm_stop_timer()
        if self._turn_gate is not None:
            self._turn_gate.user_stopped(UserStoppedSpeakingFrame(), FrameDirection.DOWNSTREAM)
        elif self._speech_stop is not None:
            await self._speech_done()

    async def _analyzer_verdict(self, frame: Frame, direction: FrameDirection, _: float) -> None:
        """The end-of-turn model says the caller finished (or its fallback quiet ran out)."""
        if self._turn_open and not self._speaking:
            await self._speech_done()

    async def _speech_done(self) -> None:
        """The caller finished: stop now if the final transcript is in, else wait for it."""
        self._speech_ended = True
        if self._final and not self._transcripts_queued():
            await self._stop_turn(self._stop_strategy())
            return
        wait = self._strategies.transcript_wait(self._speech_timeout, self._vad_stop_secs)
        self._arm_speech_timer(wait)

    def _stop_strategy(self) -> BaseUserTurnStopStrategy | None:
        return self._analyzer or self._speech_stop

    def _transcripts_queued(self) -> bool:
        """More of the caller's words already wait in this processor's queue."""
        return transcripts_queued(self._queue)

    # ------------------------------------------------------------------ transcripts

    async def _on_transcript(
        self, frame: TranscriptionFrame | InterimTranscriptionFrame, direction: FrameDirection
    ) -> None:
        final = isinstance(frame, TranscriptionFrame)
        text = frame.text.strip()
        if not text:
            await self.push_frame(frame, direction)
            return
        if not self._turn_open:
            start = self._transcript_start
            if self._bot_speaking and len(text.split()) < self._min_words:
                logger.debug("%s: too few words to cut the bot off; dropped", self)
                return
            if start is not None and (final or start.use_interim):
                params = start.turn_started_params(
                    enable_interruptions=self._strategies.interruptions_enabled
                )
                await self._start_turn(start, params, interrupt=True)
        await self.push_frame(frame, direction)
        if not self._turn_open:
            return
        self._heard = True
        self._final = final
        if self._stop_timer is not None:
            self._arm_stop_timer()  # the STT is still at work: count from its last word
        if self._speaking:
            return
        if self._speech_ended:
            if final and not self._transcripts_queued():
                await self._stop_turn(self._stop_strategy())  # the words the stop waited for
        elif not self._speech_reported and self._stop_strategy() is not None:
            # No speech reported in this turn (no VAD): the turn ends when transcripts pause.
            self._arm_speech_timer(self._speech_timeout)

    # ------------------------------------------------------------------ turn start and stop

    async def _start_turn(
        self, strategy: BaseUserTurnStartStrategy, params: UserTurnStartedParams, *, interrupt: bool
    ) -> None:
        self._turn_open = True
        self._speech_reported = self._speech_ended = False
        self._final = False
        self._heard = False
        logger.debug("%s: user turn started (%s)", self, strategy)
        if params.enable_user_speaking_frames:
            await self._announce(UserStartedSpeakingFrame)
        self._idle.process_frame(UserStartedSpeakingFrame())
        if interrupt and params.enable_interruptions and self.interruptions_allowed:
            if self._vad_upstream:
                await self.push_frame(InterruptionFrame())  # the VAD interrupted those before
            else:
                await self.broadcast_interruption()
        if not self._speaking:
            self._arm_stop_timer()
        await self._call_event_handler("on_user_turn_started", strategy)

    async def _stop_turn(
        self, strategy: BaseUserTurnStopStrategy | None, *, announce: bool = True
    ) -> None:
        if not self._turn_open or self._speaking:
            return  # never while the caller is speaking
        self._turn_open = False
        self._speech_ended = False
        self._cancel_timers()
        logger.debug("%s: user turn stopped (%s)", self, strategy)
        if announce:
            await self._announce(UserStoppedSpeakingFrame)
        self._idle.process_frame(UserStoppedSpeakingFrame())
        if strategy is not None:
            await self._call_event_handler("on_user_turn_inference_triggered", strategy)
        await self._call_event_handler("on_user_turn_stopped", strategy)

    async def _announce(self, cls: type[Frame]) -> None:
        if self._vad_upstream:
            await self.push_frame(cls(), FrameDirection.DOWNSTREAM)
        else:
            await self.broadcast_frame(cls)

    # ------------------------------------------------------------------ timers

    def _arm_speech_timer(self, delay: float) -> None:
        if self._speech_timer is not None:
            self._speech_timer.cancel()
        loop = asyncio.get_running_loop()
        self._speech_timer = loop.call_later(delay, self._on_speech_timer)

    def _on_speech_timer(self) -> None:
        self._speech_timer = None
        if self._turn_open and not self._speaking:
            if self._heard or not self._wait_for_transcript:
                self.create_task(self._stop_turn(self._stop_strategy()), "user-speech-timeout")

    def _arm_stop_timer(self) -> None:
        if self._stop_timeout <= 0:
            return
        if self._stop_timer is not None:
            self._stop_timer.cancel()
        loop = asyncio.get_running_loop()
        self._stop_timer = loop.call_later(self._stop_timeout, self._on_stop_timer)

    def _on_stop_timer(self) -> None:
        self._stop_timer = None
        self.create_task(self._stop_timed_out(), "user-turn-stop-timeout")

    async def _stop_timed_out(self) -> None:
        if not self._turn_open or self._speaking:
            return
        logger.debug("%s: user turn still open after the stop timeout; ending it", self)
        await self._call_event_handler("on_user_turn_stop_timeout")
        await self._stop_turn(None)
        if self._turn_gate is not None and self._turn_gate.held:
            await self._turn_gate.release()  # clears the model's audio; the turn is over already

    def _cancel_timers(self) -> None:
        for timer in (self._speech_timer, self._stop_timer):
            if timer is not None:
                timer.cancel()
        self._speech_timer = self._stop_timer = None

    async def _on_idle(self) -> None:
        await self._call_event_handler("on_user_turn_idle")

    async def _close(self) -> None:
        self._idle.close()
        self._cancel_timers()
        if self._turn_gate is not None:
            await self._turn_gate.close()

    async def cleanup(self) -> None:
        await self._close()
        await super().cleanup()
