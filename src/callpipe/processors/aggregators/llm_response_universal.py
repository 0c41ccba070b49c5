"""Pipecat 1.14's context aggregators: ``LLMContextAggregatorPair`` over an ``LLMContext``.

The turn logic is callpipe's (see :mod:`callpipe.processors.aggregators.llm_response`): the user
side ends a turn at VAD stop + final transcript; the assistant side sits after
``transport.output()`` and records what the caller *heard* (the output transport releases text
only after its audio was played, and reports the heard part of an interrupted reply), so an
interrupted turn keeps only what was heard. On top of that this module adds the 1.14 surface:

- ``LLMUserAggregatorParams``: ``user_turn_strategies``, ``user_mute_strategies``,
  ``user_idle_timeout`` (``on_user_turn_idle``, counted from the end of playback),
  ``vad_analyzer`` (VAD run here instead of in the transport, as 1.14 bots configure it).
- Muting: while a mute strategy says so, the caller's speech, transcripts and barge-in are
  dropped here (the caller's audio still flows on, unanalysed, for a recorder further down).
  callpipe's transport raises the interruption, but it reaches the output only through this
  aggregator, so holding it back here keeps the bot talking.
- Accepted but not acted on: ``user_turn_stop_timeout``, ``audio_idle_timeout``,
  ``empty_user_turn``, ``filter_incomplete_user_turns``, ``add_tool_change_messages``,
  ``realtime_service_mode`` and the summarization options (see the report of issue 17).
- Events: ``on_user_turn_started``, ``on_user_turn_stopped`` (with ``UserTurnStoppedMessage``),
  ``on_user_turn_message_added``, ``on_user_turn_stop_timeout``, ``on_user_turn_idle``,
  ``on_user_mute_started``/``stopped``; ``on_assistant_turn_started``,
  ``on_assistant_turn_stopped`` (with ``AssistantTurnStoppedMessage``, ``interrupted`` set when the
  caller cut the bot off).
- ``LLMContextUserTurnFrame`` / ``LLMContextAssistantTurnFrame`` broadcast (both directions)
  with the text written to the context, as 1.14 does.
- The context frames: ``LLMMessagesUpdateFrame``, ``LLMMessagesTransformFrame``,
  ``LLMSetToolsFrame``, ``LLMSetToolChoiceFrame`` (besides append/run handled by the base).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from callpipe.audio.vad.vad_analyzer import VADAnalyzer, VADState
from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotInterruptionFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMContextAssistantTurnFrame,
    LLMContextUserTurnFrame,
    LLMFullResponseStartFrame,
    LLMMessagesTransformFrame,
    LLMMessagesUpdateFrame,
    LLMSetToolChoiceFrame,
    LLMSetToolsFrame,
    StartFrame,
    TranscriptionFrame,
    UserIdleTimeoutUpdateFrame,
    UserMuteStartedFrame,
    UserMuteStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.processors.aggregators.llm_context import LLMContext, normalize_tools
from callpipe.processors.aggregators.llm_response import (
    LLMAssistantAggregatorParams as _LegacyAssistantParams,
)
from callpipe.processors.aggregators.llm_response import (
    LLMAssistantContextAggregator,
    LLMUserContextAggregator,
    TurnLatencyTracker,
)
from callpipe.processors.aggregators.llm_response import (
    LLMUserAggregatorParams as _LegacyUserParams,
)
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.processors.aggregators.turn_analyzer_gate import TurnAnalyzerGate
from callpipe.processors.frame_processor import FrameDirection
from callpipe.turns.user_idle_controller import UserIdleController
from callpipe.turns.user_mute.strategies import BaseUserMuteStrategy
from callpipe.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy,
)
from callpipe.turns.user_turn_strategies import UserTurnStrategies

logger = logging.getLogger(__name__)

_DEFAULT_SPEECH_TIMEOUT = 0.5
"""How long after the caller stopped to wait for a late final transcript (no strategy given)."""

_MUTABLE = (
    InterruptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
)
"""The caller's frames a mute drops."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class LLMUserAggregatorParams:
    """User-side options as in Pipecat 1.14 (fields callpipe does not act on are noted).

    ``audio_idle_timeout``, ``empty_user_turn``, ``filter_incomplete_user_turns`` and
    ``user_turn_completion_config`` are accepted for compatibility and not used.
    """

    add_tool_change_messages: bool = False
    audio_idle_timeout: float = 1.0
    user_turn_strategies: UserTurnStrategies | None = None
    user_mute_strategies: list[BaseUserMuteStrategy] = field(default_factory=list)
    user_turn_stop_timeout: float = 5.0
    user_idle_timeout: float = 0
    vad_analyzer: VADAnalyzer | None = None
    empty_user_turn: Any = None
    filter_incomplete_user_turns: bool = False
    user_turn_completion_config: Any = None


@dataclass
class LLMAssistantAggregatorParams:
    """Assistant-side options as in Pipecat 1.14 (summarization is accepted, not performed)."""

    enable_auto_context_summarization: bool = False
    auto_context_summarization_config: Any = None
    add_tool_change_messages: bool = False
    enable_context_summarization: bool | None = None
    context_summarization_config: Any = None


@dataclass
class UserTurnStoppedMessage:
    """What the caller said in the turn that just ended."""

    content: str | None
    timestamp: str
    user_id: str | None = None


@dataclass
class UserTurnMessageAddedMessage:
    """The user message just written to the context."""

    content: str
    timestamp: str
    user_id: str | None = None


@dataclass
class AssistantTurnStoppedMessage:
    """What the caller heard of the bot's turn; ``interrupted`` when the caller cut it off."""

    content: str
    interrupted: bool
    timestamp: str


class LLMUserAggregator(LLMUserContextAggregator):
    """The user half (see the module docstring)."""

    def __init__(
        self,
        context: Any,
        *,
        params: LLMUserAggregatorParams | None = None,
        latency: TurnLatencyTracker | None = None,
        **kwargs: Any,
    ) -> None:
        self._user_params = params or LLMUserAggregatorParams()
        self._strategies = self._user_params.user_turn_strategies or UserTurnStrategies()
        timeout = self._strategies.speech_timeout
        if self._user_params.user_turn_strategies is None or timeout is None:
            timeout = _DEFAULT_SPEECH_TIMEOUT
        super().__init__(
            context,
            params=_LegacyUserParams(aggregation_timeout=timeout),
            latency=latency,
            **kwargs,
        )
        self._mutes = list(self._user_params.user_mute_strategies)
        self._muted = False
        self._vad = self._user_params.vad_analyzer
        self._vad_state = VADState.QUIET
        self._bot_is_speaking = False
        self._held_turn = False
        self._release_next_interruption = False
        self._turn_started_at = ""
        self._idle = UserIdleController(self._user_params.user_idle_timeout, self._on_idle)
        stops = self._strategies.stop or ()
        analyzers = [s for s in stops if isinstance(s, TurnAnalyzerUserTurnStopStrategy)]
        self._turn_gate = (
            TurnAnalyzerGate(analyzers[0], self, self._end_turn) if analyzers else None
        )
        for event in (
            "on_user_turn_started",
            "on_user_turn_stopped",
            "on_user_turn_stop_timeout",
            "on_user_turn_idle",
            "on_user_turn_message_added",
            "on_user_mute_started",
            "on_user_mute_stopped",
        ):
            self._register_event_handler(event)

    @property
    def muted(self) -> bool:
        return self._muted

    def input_audio_unused(self) -> bool:
        # The caller's audio feeds the aggregator's own VAD, turn analyzer and mute strategies.
        return self._vad is None and self._turn_gate is None and not self._mutes

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, StartFrame):
            if self._vad is not None:
                self._vad.set_sample_rate(frame.audio_in_sample_rate)
            if self._turn_gate is not None:
                self._turn_gate.start(frame.audio_in_sample_rate)
            for strategy in self._mutes:
                await strategy.setup(None)
            await super().process_frame(frame, direction)
            return
        if isinstance(frame, EndFrame | CancelFrame):
            self._idle.close()
            if self._turn_gate is not None:
                await self._turn_gate.close()
            await super().process_frame(frame, direction)
            return
        if isinstance(frame, InputAudioRawFrame):
            # The per-packet path: 50 frames a second per call, kept short. Muted audio is not
            # analysed but still passed on (a recorder after the output keeps the caller whole).
            if self._mutes:
                await self._mute_drops(frame)
            gate = self._turn_gate
            if gate is not None and not self._muted and gate.audio(frame.audio):
                await gate.release()
            if self._vad is not None and not self._muted:
                await self._run_vad(frame)
            await self.push_frame(frame, direction)
            return
        if await self._mute_drops(frame):
            return
        self._idle.process_frame(frame)
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_is_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_is_speaking = False
        if isinstance(frame, InterruptionFrame):
            if self._interruption_allowed():
                await super().process_frame(frame, direction)
            else:
                logger.debug("%s: holding back a barge-in (turn strategies)", self)
        elif isinstance(frame, UserStartedSpeakingFrame):
            await self._on_user_started(frame, direction)
        elif isinstance(frame, UserStoppedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            await self._on_user_stopped(frame, direction)
        elif isinstance(frame, VADUserStartedSpeakingFrame) and self._turn_gate is not None:
            self._turn_gate.vad_started(frame.start_secs)
            await super().process_frame(frame, direction)
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self._turn_gate is not None:
            self._turn_gate.vad_stopped(frame.stop_secs)
            await super().process_frame(frame, direction)
        elif isinstance(frame, TranscriptionFrame | InterimTranscriptionFrame):
            if await self._held_transcript(frame):
                return
            await super().process_frame(frame, direction)
        elif isinstance(frame, LLMMessagesUpdateFrame):
            self._context.set_messages(list(frame.messages))
            if frame.run_llm:
                await self.push_context_frame()
        elif isinstance(frame, LLMMessagesTransformFrame):
            self._context.set_messages(list(frame.transform(self._context.messages)))
            if frame.run_llm:
                await self.push_context_frame()
        elif isinstance(frame, LLMSetToolsFrame):
            tools = normalize_tools(frame.tools)
            if isinstance(self._context, LLMContext):
                self._context.set_tools(tools)
            elif isinstance(self._context, OpenAILLMContext):
                self._context.set_tools(tools or None)
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMSetToolChoiceFrame):
            if isinstance(self._context, LLMContext | OpenAILLMContext):
                self._context.set_tool_choice(frame.tool_choice)
        elif isinstance(frame, UserIdleTimeoutUpdateFrame):
            pass  # consumed: the idle controller has applied it
        else:
            await super().process_frame(frame, direction)

    # ------------------------------------------------------------------ muting

    async def _mute_drops(self, frame: Frame) -> bool:
        """Whether ``frame`` is dropped by a mute; then update the mute state from it."""
        drop = self._muted and isinstance(frame, _MUTABLE)
        if not self._mutes:
            return False
        mute = False
        for strategy in self._mutes:
            mute |= await strategy.process_frame(frame)
        if mute != self._muted:
            self._muted = mute
            logger.debug("%s: caller %s", self, "muted" if mute else "unmuted")
            if mute:
                await self._call_event_handler("on_user_mute_started")
                await self._broadcast(UserMuteStartedFrame)
            else:
                await self._call_event_handler("on_user_mute_stopped")
                await self._broadcast(UserMuteStoppedFrame)
        return drop

    async def _broadcast(self, cls: type[Frame]) -> None:
        await self.push_frame(cls(), FrameDirection.DOWNSTREAM)
        await self.push_frame(cls(), FrameDirection.UPSTREAM)

    # ------------------------------------------------------------------ turn start, barge-in

    def _interruption_allowed(self) -> bool:
        if self._release_next_interruption:
            self._release_next_interruption = False
            return True
        if not self._strategies.interruptions_enabled:
            return False
        return not self._held_turn

    async def _on_user_started(self, frame: Frame, direction: FrameDirection) -> None:
        # While the bot speaks, a min-words strategy holds the barge-in (and the turn) until
        # enough words were transcribed.
        resumed = self._turn_gate is not None and self._turn_gate.user_started()
        if resumed:
            # The end-of-turn model held the turn open and the caller went on: same turn.
            await super().process_frame(frame, direction)
            return
        self._held_turn = self._bot_is_speaking and self._strategies.min_words > 1
        self._turn_started_at = _now_iso()
        await super().process_frame(frame, direction)
        start = self._strategies.start[0] if self._strategies.start else None
        await self._call_event_handler("on_user_turn_started", start)

    async def _on_user_stopped(self, frame: Frame, direction: FrameDirection) -> None:
        """The caller went quiet: the turn ends, unless an end-of-turn model says otherwise."""
        if self._turn_gate is None:
            await super().process_frame(frame, direction)
        else:
            self._turn_gate.user_stopped(frame, direction)

    async def _end_turn(self, frame: Frame, direction: FrameDirection, stopped_at: float) -> None:
        """The end-of-turn model let the stop through: the turn latency still counts from
        when the caller went quiet, not from the verdict."""
        await super().process_frame(frame, direction)
        self._latency.user_stopped(stopped_at)

    async def _held_transcript(self, frame: TranscriptionFrame | InterimTranscriptionFrame) -> bool:
        """True when a transcript is dropped because a held turn has too few words."""
        if not self._held_turn:
            return False
        if len(frame.text.split()) < self._strategies.min_words:
            return True
        self._held_turn = False
        if self._bot_is_speaking and self._strategies.interruptions_enabled:
            self._release_next_interruption = True
            await self.push_frame(BotInterruptionFrame(), FrameDirection.UPSTREAM)
        return False

    # ------------------------------------------------------------------ VAD in the aggregator

    async def _run_vad(self, frame: InputAudioRawFrame) -> None:
        assert self._vad is not None
        state = await self._vad.analyze_audio(frame.audio)
        if state == self._vad_state:
            return
        previous, self._vad_state = self._vad_state, state
        params = self._vad.params
        if state == VADState.SPEAKING and previous != VADState.SPEAKING:
            await self.push_frame(VADUserStartedSpeakingFrame(start_secs=params.start_secs))
            if self._turn_gate is not None:
                self._turn_gate.vad_started(params.start_secs)
            started = UserStartedSpeakingFrame()
            self._idle.process_frame(started)
            await self._on_user_started(started, FrameDirection.DOWNSTREAM)
            await self.push_frame(UserStartedSpeakingFrame(), FrameDirection.UPSTREAM)
            if self.interruptions_allowed and self._strategies.interruptions_enabled:
                if not self._held_turn:
                    self._release_next_interruption = True
                    await self.push_frame(BotInterruptionFrame(), FrameDirection.UPSTREAM)
        elif state == VADState.QUIET:
            vad_stop = VADUserStoppedSpeakingFrame(stop_secs=params.stop_secs)
            if self._turn_gate is not None:
                self._turn_gate.vad_stopped(params.stop_secs)
            await super().process_frame(vad_stop, FrameDirection.DOWNSTREAM)
            await self._on_user_stopped(UserStoppedSpeakingFrame(), FrameDirection.DOWNSTREAM)
            await self.push_frame(UserStoppedSpeakingFrame(), FrameDirection.UPSTREAM)
            self._idle.process_frame(UserStoppedSpeakingFrame())

    # ------------------------------------------------------------------ hooks and events

    async def _on_turn_added(self, text: str) -> None:
        timestamp = self._turn_started_at or _now_iso()
        await self.push_frame(LLMContextUserTurnFrame(text=text, timestamp=timestamp))
        await self.push_frame(
            LLMContextUserTurnFrame(text=text, timestamp=timestamp), FrameDirection.UPSTREAM
        )
        stop = self._strategies.stop[0] if self._strategies.stop else None
        await self._call_event_handler(
            "on_user_turn_stopped", stop, UserTurnStoppedMessage(content=text, timestamp=timestamp)
        )
        await self._call_event_handler(
            "on_user_turn_message_added",
            UserTurnMessageAddedMessage(content=text, timestamp=timestamp),
        )

    async def _on_empty_turn(self) -> None:
        await self._call_event_handler("on_user_turn_stop_timeout")
        self._idle.wait_for_user()

    async def _on_idle(self) -> None:
        await self._call_event_handler("on_user_turn_idle")

    async def cleanup(self) -> None:
        self._idle.close()
        if self._turn_gate is not None:
            await self._turn_gate.close()
        for strategy in self._mutes:
            await strategy.cleanup()
        await super().cleanup()


class LLMAssistantAggregator(LLMAssistantContextAggregator):
    """The assistant half (see the module docstring)."""

    def __init__(
        self,
        context: Any,
        *,
        params: LLMAssistantAggregatorParams | None = None,
        latency: TurnLatencyTracker | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(context, params=_LegacyAssistantParams(), latency=latency, **kwargs)
        self._assistant_params = params or LLMAssistantAggregatorParams()
        self._turn_open = False
        self._turn_started_at = ""
        self._turn_message: dict[str, Any] | None = None
        self._register_event_handler("on_assistant_turn_started")
        self._register_event_handler("on_assistant_turn_stopped")

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, LLMFullResponseStartFrame) and not self._turn_open:
            await super().process_frame(frame, direction)
            self._turn_open = True
            self._turn_message = None
            self._turn_started_at = _now_iso()
            await self._call_event_handler("on_assistant_turn_started")
        elif isinstance(frame, BotInterruptedFrame | InterruptionFrame):
            await super().process_frame(frame, direction)
            await self._finish_turn(interrupted=True)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            if self._turn_open and self._reply_ended:
                self._take_queued_text()
                self._commit(interrupted=False)
                await super().process_frame(frame, direction)
                await self._finish_turn(interrupted=False)
            else:
                await super().process_frame(frame, direction)
        else:
            await super().process_frame(frame, direction)

    def _commit(self, *, interrupted: bool) -> None:
        super()._commit(interrupted=interrupted)
        if self._message is not None:
            self._turn_message = self._message

    async def _finish_turn(self, *, interrupted: bool) -> None:
        if not self._turn_open:
            return
        self._turn_open = False
        message, self._turn_message = self._turn_message, None
        content = str(message.get("content") or "") if message is not None else ""
        if content:
            started = self._turn_started_at
            await self.push_frame(LLMContextAssistantTurnFrame(text=content, timestamp=started))
            await self.push_frame(
                LLMContextAssistantTurnFrame(text=content, timestamp=started),
                FrameDirection.UPSTREAM,
            )
        await self._call_event_handler(
            "on_assistant_turn_stopped",
            AssistantTurnStoppedMessage(
                content=content,
                interrupted=interrupted,
                timestamp=self._turn_started_at,
            ),
        )


class LLMContextAggregatorPair:
    """``.user()`` and ``.assistant()`` sharing one context (unpacks as ``user, assistant``)."""

    def __init__(
        self,
        context: Any,
        *,
        user_params: LLMUserAggregatorParams | None = None,
        assistant_params: LLMAssistantAggregatorParams | None = None,
        add_tool_change_messages: bool | None = None,
        realtime_service_mode: bool | None = None,
    ) -> None:
        latency = TurnLatencyTracker()
        self._user = LLMUserAggregator(context, params=user_params, latency=latency)
        self._assistant = LLMAssistantAggregator(context, params=assistant_params, latency=latency)

    def user(self) -> LLMUserAggregator:
        return self._user

    def assistant(self) -> LLMAssistantAggregator:
        return self._assistant

    def __iter__(self) -> Iterator[LLMUserAggregator | LLMAssistantAggregator]:
        return iter((self._user, self._assistant))
