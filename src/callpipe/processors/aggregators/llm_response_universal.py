"""Pipecat 1.14's context aggregators: ``LLMContextAggregatorPair`` over an ``LLMContext``.

The turn logic is callpipe's (see :mod:`callpipe.processors.aggregators.llm_response`): the user
side ends a turn at VAD stop + final transcript; the assistant side sits after
``transport.output()`` and records what the caller *heard* (the output transport releases text
only after its audio was played, and reports the heard part of an interrupted reply), so an
interrupted turn keeps only what was heard. On top of that this module adds the 1.14 surface:

- ``LLMUserAggregatorParams``: ``user_turn_strategies``, ``user_mute_strategies``,
  ``user_idle_timeout`` (``on_user_turn_idle``, counted from the end of playback),
  ``vad_analyzer`` (VAD run here instead of in the transport, as 1.14 bots configure it) with
  ``audio_idle_timeout`` (a caller whose audio stops arriving mid-speech is taken as stopped).
- ``user_turn_stop_timeout``: a turn that is still open this long after the caller went quiet
  (the final transcript never came, or an end-of-turn model still holds it; transcripts restart
  the count) is ended anyway and ``on_user_turn_stop_timeout`` fires. A turn with nothing
  transcribed ends this way, as in 1.14: callpipe waits that long for a late final transcript.
- ``empty_user_turn`` (:class:`~callpipe.turns.empty_user_turn.EmptyUserTurnConfig`): a turn
  that ended with no transcript (``on_user_turn_stopped`` fires with empty content) and had cut
  the bot off gets one LLM run with the config's prompt added as a ``system`` message (1.14
  uses the ``developer`` role; callpipe's OpenAI-compatible and Gemini services send ``system``
  everywhere). Not while a function call is pending (its result runs the LLM) or the caller is
  muted; at most ``max_consecutive_recoveries`` in a row until a turn with words.
- Turn strategies (:mod:`callpipe.turns.user_turn_strategies`): with an external start/stop
  strategy, ``ProposedUserStarted/StoppedSpeakingFrame`` from a service become turns here
  (announced both ways, the bot cut off unless disabled); otherwise they pass on. Strategies a
  service recommends in ``ServiceMetadataFrame.user_turn_strategies`` replace the defaults
  (never the bot's own). ``STTMetadataFrame.ttfs_p99_latency`` stretches the wait for a late
  final transcript. A wake-phrase start strategy keeps the caller unheard until the phrase.
- Eager end of turn (``EagerUserTurnStrategies``): an ``EagerTranscriptionFrame`` (the STT
  predicts the turn ended) runs the LLM at once on a copy of the context holding the predicted
  text (``LLMContextFrame(speculation=True)``; the LLM service holds the reply, see
  :mod:`callpipe.turns.speculation_gate`). When the turn ends, the committed transcript is
  compared with it (the strategy's ``match_policy``): a match lets the
  ``UserStoppedSpeakingFrame`` release the held reply, the committed text is written and the LLM
  is not run again; otherwise an ``EagerEndOfTurnCancelFrame`` goes first (the reply is
  dropped, its request cancelled) and the LLM runs on the committed text. A committed transcript
  not in yet at the stop, an empty turn or ``speculation_timeout`` withdraw it too.
- ``InputTextRawFrame``: typed text, a user turn of its own (written, LLM run, never spoken).
- Muting: while a mute strategy says so, the caller's speech, transcripts and barge-in are
  dropped here (the caller's audio still flows on, unanalysed, for a recorder further down).
  callpipe's transport raises the interruption, but it reaches the output only through this
  aggregator, so holding it back here keeps the bot talking.
- Context summarization (assistant side): with ``enable_auto_context_summarization`` (or the
  deprecated ``enable_context_summarization``), after each assistant turn the context is
  checked against ``auto_context_summarization_config`` and, past a threshold, its older
  messages are replaced by a summary the pipeline's LLM service writes in the background; an
  ``LLMSummarizeContextFrame`` asks for one at any time. ``on_summary_applied`` reports each
  summary. See :mod:`callpipe.processors.aggregators.llm_context_summarizer`.
- Turn completion by the LLM (``FilterIncompleteUserTurnStrategies``, or the deprecated
  ``filter_incomplete_user_turns`` / ``user_turn_completion_config`` params, which are rewired
  to it with a ``DeprecationWarning`` as in 1.14): at start the LLM service is told to use the
  markers (an ``LLMUpdateSettingsFrame``); each segment the caller says is still written and
  sent to the LLM at once, but ``on_user_turn_stopped`` waits for the LLM's
  ``UserTurnInferenceCompletedFrame`` and reports all the segments since the last one.
- ``add_tool_change_messages`` (either params, or the pair's argument, which sets both): on an
  ``LLMSetToolsFrame`` a ``system`` message names the functions added and removed (1.14 uses
  the ``developer`` role; see ``empty_user_turn``). Accepted but not acted on:
  ``realtime_service_mode`` (see the report of issue 17).
- The shared base :class:`~callpipe.processors.aggregators.llm_response.LLMContextAggregator`
  (both halves are one): ``messages``, ``role``, ``context``, ``add_messages``,
  ``set_messages``, ``transform_messages``, ``set_tools``, ``set_tool_choice``,
  ``aggregation_string``, ``reset``, ``push_aggregation``, ``push_context_frame``. The
  assistant half also has ``has_function_calls_in_progress`` and
  ``has_synchronous_function_calls_in_progress`` (from the function-call frames it sees).
- Assistant text, thoughts and markers as in 1.14 (see
  :mod:`callpipe.processors.aggregators.llm_response`): a reply whose text was all passed on
  unspoken (``skip_tts``) ends its assistant turn at ``LLMFullResponseEndFrame``; a finished
  thought fires ``on_assistant_thought`` (``AssistantThoughtMessage``); turn-completion
  markers (``●``, ``◐``, ``○`` and any seen on ``LLMMarkerFrame``) stay in the context but are
  stripped from the turn's reported text.
- Events: ``on_user_turn_started``, ``on_user_turn_stopped`` (with ``UserTurnStoppedMessage``),
  ``on_user_turn_message_added``, ``on_user_turn_inference_triggered`` (with the stop strategy,
  after the LLM was asked to answer the caller's words: each segment, and an eager end of turn
  when answered ahead; not for a turn the stop timeout ended), ``on_user_turn_stop_timeout``,
  ``on_user_turn_idle``, ``on_user_mute_started``/``stopped``, ``on_user_backchannel``
  (registered; never fires: callpipe has no ``UserBackchannelFrame``);
  ``on_assistant_turn_started``, ``on_assistant_turn_stopped`` (with
  ``AssistantTurnStoppedMessage``, ``interrupted`` set when the caller cut the bot off),
  ``on_assistant_thought``, ``on_assistant_backchannel`` (with ``AssistantBackchannelMessage``,
  when a TTS service is about to speak an ``AggregatedTextFrame`` whose ``text_type`` is
  ``TextType.BACKCHANNEL``), ``on_summary_applied`` (with the summarizer and a
  ``SummaryAppliedEvent``).
- ``LLMContextUserTurnFrame`` / ``LLMContextAssistantTurnFrame`` broadcast (both directions)
  with the text written to the context, as 1.14 does.
- The context frames: ``LLMMessagesUpdateFrame``, ``LLMMessagesTransformFrame``,
  ``LLMSetToolsFrame``, ``LLMSetToolChoiceFrame`` (besides append/run handled by the base). The
  assistant half applies (and consumes) the last two when they come up from after it, as in
  1.14; going down it leaves them to the user half, which saw them first.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from callpipe.audio.vad.vad_analyzer import VADAnalyzer
from callpipe.audio.vad.vad_controller import SpeechChange, VADController
from callpipe.frames.frames import (
    AggregatedTextFrame,
    BotInterruptedFrame,
    BotInterruptionFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EagerEndOfTurnCancelFrame,
    EagerTranscriptionFrame,
    EndFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMContextAssistantTurnFrame,
    LLMContextFrame,
    LLMContextSummaryRequestFrame,
    LLMContextSummaryResultFrame,
    LLMContextUserTurnFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesTransformFrame,
    LLMMessagesUpdateFrame,
    LLMSetToolChoiceFrame,
    LLMSetToolsFrame,
    LLMSummarizeContextFrame,
    LLMThoughtStartFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    ServiceMetadataFrame,
    StartFrame,
    STTMetadataFrame,
    TextType,
    TranscriptionFrame,
    TTSTextFrame,
    UserBackchannelFrame,
    UserIdleTimeoutUpdateFrame,
    UserMuteStartedFrame,
    UserMuteStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTurnInferenceCompletedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.processors.aggregators.llm_context import (
    LLMContext,
    ProvisionalLLMContext,
)
from callpipe.processors.aggregators.llm_context_summarizer import (
    LLMContextSummarizer,
)
from callpipe.processors.aggregators.llm_context_summarizer import (
    SummaryAppliedEvent as SummaryAppliedEvent,
)
from callpipe.processors.aggregators.llm_response import (
    LLMAssistantAggregatorParams as _LegacyAssistantParams,
)
from callpipe.processors.aggregators.llm_response import (
    LLMAssistantContextAggregator,
    LLMUserContextAggregator,
    TurnLatencyTracker,
)
from callpipe.processors.aggregators.llm_response import (
    LLMContextAggregator as LLMContextAggregator,
)
from callpipe.processors.aggregators.llm_response import (
    LLMUserAggregatorParams as _LegacyUserParams,
)
from callpipe.processors.aggregators.turn_analyzer_gate import TurnAnalyzerGate
from callpipe.processors.frame_processor import FrameDirection
from callpipe.turns.empty_user_turn import EmptyUserTurnConfig
from callpipe.turns.types import UserTurnSpeculation
from callpipe.turns.user_idle_controller import UserIdleController
from callpipe.turns.user_mute.strategies import BaseUserMuteStrategy
from callpipe.turns.user_start.wake_phrase_user_turn_start_strategy import (
    WakePhraseUserTurnStartStrategy,
)
from callpipe.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy,
)
from callpipe.turns.user_turn_completion_mixin import (
    USER_TURN_COMPLETE_MARKER,
    USER_TURN_INCOMPLETE_LONG_MARKER,
    USER_TURN_INCOMPLETE_SHORT_MARKER,
    UserTurnCompletionConfig,
)
from callpipe.turns.user_turn_strategies import (
    DEFAULT_SPEECH_TIMEOUT,
    EagerUserTurnStopStrategy,
    ExternalUserTurnCompletionStopStrategy,
    FilterIncompleteUserTurnStrategies,
    UserTurnStartedParams,
    UserTurnStrategies,
    first_of,
)

# Pipecat imports these config classes from this module too.
from callpipe.utils.context.llm_context_summarization import (
    LLMAutoContextSummarizationConfig as LLMAutoContextSummarizationConfig,
)
from callpipe.utils.context.llm_context_summarization import (
    LLMContextSummarizationConfig as LLMContextSummarizationConfig,
)
from callpipe.utils.context.llm_context_summarization import (
    LLMContextSummaryConfig as LLMContextSummaryConfig,
)

logger = logging.getLogger(__name__)


_MUTABLE = (
    InterruptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
)
"""The caller's frames a mute drops."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class LLMUserAggregatorParams:
    """User-side options as in Pipecat 1.14 (see the module docstring for what each does).

    ``filter_incomplete_user_turns`` / ``user_turn_completion_config`` are deprecated (as in
    1.14): use ``user_turn_strategies=FilterIncompleteUserTurnStrategies(config=...)``; given,
    the strategies are rewired that way. ``audio_idle_timeout`` applies to ``vad_analyzer`` only; 0
    disables it, as does 0 for ``user_turn_stop_timeout`` (an empty turn then ends when the
    speech timeout finds no transcript, without the event). ``empty_user_turn=None`` leaves
    every turn without a transcript unanswered.
    """

    add_tool_change_messages: bool = False
    audio_idle_timeout: float = 1.0
    user_turn_strategies: UserTurnStrategies | None = None
    user_mute_strategies: list[BaseUserMuteStrategy] = field(default_factory=list)
    user_turn_stop_timeout: float = 5.0
    user_idle_timeout: float = 0
    vad_analyzer: VADAnalyzer | None = None
    empty_user_turn: EmptyUserTurnConfig | None = field(default_factory=EmptyUserTurnConfig)
    filter_incomplete_user_turns: bool = False
    user_turn_completion_config: UserTurnCompletionConfig | None = None

    def __post_init__(self) -> None:
        if self.filter_incomplete_user_turns:
            warnings.warn(
                "`LLMUserAggregatorParams.filter_incomplete_user_turns` is deprecated since "
                "1.2.0 and will be removed in 2.0.0. Use "
                "`user_turn_strategies=FilterIncompleteUserTurnStrategies()` instead.",
                DeprecationWarning,
                stacklevel=3,
            )
        if self.user_turn_completion_config is not None:
            warnings.warn(
                "`LLMUserAggregatorParams.user_turn_completion_config` is deprecated since "
                "1.2.0 and will be removed in 2.0.0. Use "
                "`FilterIncompleteUserTurnStrategies(config=...)` instead.",
                DeprecationWarning,
                stacklevel=3,
            )


@dataclass
class LLMAssistantAggregatorParams:
    """Assistant-side options as in Pipecat 1.14.

    ``enable_auto_context_summarization``: summarize the context automatically when
    ``auto_context_summarization_config`` (None: its defaults) says it has grown too large.
    On-demand summaries (``LLMSummarizeContextFrame``) work either way.
    ``enable_context_summarization`` / ``context_summarization_config`` are the deprecated
    names: given, they are moved to the new fields with a ``DeprecationWarning``.
    ``add_tool_change_messages``: see the module docstring.
    """

    enable_auto_context_summarization: bool = False
    auto_context_summarization_config: LLMAutoContextSummarizationConfig | None = None
    add_tool_change_messages: bool = False
    enable_context_summarization: bool | None = None
    context_summarization_config: (
        LLMContextSummarizationConfig | LLMAutoContextSummarizationConfig | None
    ) = None

    def __post_init__(self) -> None:
        if self.enable_context_summarization is not None:
            warnings.warn(
                "`LLMAssistantAggregatorParams.enable_context_summarization` is deprecated "
                "since 0.0.104 and will be removed in 2.0.0. Use "
                "`enable_auto_context_summarization` instead.",
                DeprecationWarning,
                stacklevel=3,
            )
            self.enable_auto_context_summarization = self.enable_context_summarization
            self.enable_context_summarization = None
        old = self.context_summarization_config
        if old is not None:
            warnings.warn(
                "`LLMAssistantAggregatorParams.context_summarization_config` is deprecated "
                "since 0.0.104 and will be removed in 2.0.0. Use "
                "`auto_context_summarization_config` instead.",
                DeprecationWarning,
                stacklevel=3,
            )
            if isinstance(old, LLMContextSummarizationConfig):
                self.auto_context_summarization_config = old.to_auto_config()
            else:
                self.auto_context_summarization_config = old
            self.context_summarization_config = None


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
class UserBackchannelMessage:
    """A short acknowledgment the caller made while the bot spoke ("mhm"); see
    ``on_user_backchannel``."""

    content: str
    timestamp: str
    user_id: str | None = None


@dataclass
class AssistantBackchannelMessage:
    """A short acknowledgment the bot said while the caller spoke ("Mm-hmm."); ``timestamp``
    is when its audio started (ISO 8601)."""

    content: str
    timestamp: str


@dataclass
class AssistantThoughtMessage:
    """A thought the LLM finished; ``timestamp`` is when it started (ISO 8601)."""

    content: str
    timestamp: str


_TURN_MARKERS = frozenset(
    {USER_TURN_COMPLETE_MARKER, USER_TURN_INCOMPLETE_SHORT_MARKER, USER_TURN_INCOMPLETE_LONG_MARKER}
)
"""Pipecat's turn-completion markers, stripped from the reported text of an assistant turn."""


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
        super().__init__(
            context,
            params=_LegacyUserParams(),
            latency=latency,
            add_tool_change_messages=self._user_params.add_tool_change_messages,
            **kwargs,
        )
        self._strategies: UserTurnStrategies
        self._turn_gate: TurnAnalyzerGate | None = None
        self._wake: WakePhraseUserTurnStartStrategy | None = None
        self._stt_latency = 0.0
        self._sample_rate = 0
        self._caller_heard_asleep = False
        self._completion: ExternalUserTurnCompletionStopStrategy | None = None
        self._eager: EagerUserTurnStopStrategy | None = None
        # The eager end of turn being answered ahead of time, its timeout, and whether the
        # committed transcript confirmed it (then the turn's LLM run is skipped).
        self._speculation: UserTurnSpeculation | None = None
        self._speculation_timer: asyncio.TimerHandle | None = None
        self._speculation_confirmed = False
        # The caller's words since the LLM last said a turn was complete, and when they began.
        self._pending_stop: tuple[str, str] | None = None
        strategies = self._user_params.user_turn_strategies or UserTurnStrategies()
        if self._user_params.filter_incomplete_user_turns:
            strategies = FilterIncompleteUserTurnStrategies(
                start=strategies.start,
                stop=strategies.stop,
                config=self._user_params.user_turn_completion_config,
            )
            self._user_params.user_turn_strategies = strategies
        self._use_strategies(strategies)
        self._mutes = list(self._user_params.user_mute_strategies)
        self._muted = False
        self._vad = self._user_params.vad_analyzer
        self._vad_controller = (
            VADController(self._vad, audio_idle_timeout=self._user_params.audio_idle_timeout)
            if self._vad is not None
            else None
        )
        self._audio_idle_check: asyncio.TimerHandle | None = None
        self._bot_is_speaking = False
        self._function_calls: set[str] = set()  # tool_call_ids announced and not ended
        # The turn as the 1.14 events see it: open from the caller's first words until written
        # to the context or found empty (a new VAD start while it is open continues it).
        self._turn_open = False
        self._caller_speaking = False
        self._turn_interrupted_bot = False
        self._stop_timer: asyncio.TimerHandle | None = None
        self._stop_timed_out = False
        self._empty_recoveries = 0
        self._held_turn = False
        self._release_next_interruption = False
        self._turn_started_at = ""
        self._idle = UserIdleController(self._user_params.user_idle_timeout, self._on_idle)
        for event in (
            "on_user_turn_started",
            "on_user_turn_stopped",
            "on_user_turn_stop_timeout",
            "on_user_turn_idle",
            "on_user_turn_inference_triggered",
            "on_user_turn_message_added",
            "on_user_mute_started",
            "on_user_mute_stopped",
            "on_user_backchannel",
        ):
            self._register_event_handler(event)

    def _use_strategies(self, strategies: UserTurnStrategies) -> None:
        """Apply turn strategies: at construction, or those a service recommends later."""
        self._strategies = strategies
        self._completion = strategies.completion_strategy()
        self._eager = strategies.eager_strategy()
        timeout = strategies.speech_timeout
        if (
            self._user_params.user_turn_strategies is None
            and strategies.proposed_stop_resolver() is None
        ):
            timeout = None  # callpipe's own default wait, not 1.14's speech-timeout default
        self._params.aggregation_timeout = DEFAULT_SPEECH_TIMEOUT if timeout is None else timeout
        if self._stt_latency > 0:
            strategies.update_stt_timeout(self._stt_latency)
        analyzer = first_of(strategies.stop, TurnAnalyzerUserTurnStopStrategy)
        self._turn_gate = (
            TurnAnalyzerGate(analyzer, self, self._end_turn) if analyzer is not None else None
        )
        if self._turn_gate is not None and self._sample_rate:
            self._turn_gate.start(self._sample_rate)
        self._wake = first_of(strategies.start, WakePhraseUserTurnStartStrategy)

    @property
    def user_turn_strategies(self) -> UserTurnStrategies:
        """The turn strategies in use (the bot's, a service's recommendation, or the defaults)."""
        return self._strategies

    @property
    def muted(self) -> bool:
        return self._muted

    def input_audio_unused(self) -> bool:
        # The caller's audio feeds the aggregator's own VAD, turn analyzer and mute strategies.
        return self._vad is None and self._turn_gate is None and not self._mutes

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, StartFrame):
            self._sample_rate = frame.audio_in_sample_rate
            if self._vad_controller is not None:
                self._vad_controller.set_sample_rate(frame.audio_in_sample_rate)
            if self._turn_gate is not None:
                self._turn_gate.start(frame.audio_in_sample_rate)
            for strategy in self._mutes:
                await strategy.setup(None)
            await super().process_frame(frame, direction)
            settings = None if self._completion is None else self._completion.llm_settings_frame()
            if settings is not None:
                await self.push_frame(settings)
            return
        if isinstance(frame, EndFrame | CancelFrame):
            self._idle.close()
            self._cancel_timers()
            self._take_speculation()
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
            if self._vad_controller is not None and not self._muted:
                await self._run_vad(self._vad_controller, frame)
            await self.push_frame(frame, direction)
            return
        if await self._mute_drops(frame):
            return
        if isinstance(frame, UserBackchannelFrame):
            # The caller's "mhm" while the bot talks: reported, kept out of the context, and
            # passed on; it starts no turn.
            message = UserBackchannelMessage(
                content=frame.text,
                timestamp=frame.timestamp or _now_iso(),
                user_id=frame.user_id or None,
            )
            await self._call_event_handler("on_user_backchannel", message)
            await self.push_frame(frame, direction)
            return
        if self._wake is not None and await self._asleep_drops(self._wake, frame, direction):
            return
        waiting = self._idle.waiting_for_user  # before this frame: did a turn start cut in?
        self._idle.process_frame(frame)
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_is_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_is_speaking = False
        elif isinstance(frame, FunctionCallsStartedFrame):
            self._function_calls.update(call.tool_call_id for call in frame.function_calls)
        elif isinstance(frame, FunctionCallCancelFrame) or (
            isinstance(frame, FunctionCallResultFrame)
            and (frame.properties is None or frame.properties.is_final)
        ):
            self._function_calls.discard(frame.tool_call_id)  # a progress report leaves it
        if isinstance(frame, InterruptionFrame):
            if self._interruption_allowed():
                self._take_speculation()  # the LLM service drops and cancels it
                await super().process_frame(frame, direction)
            else:
                logger.debug("%s: holding back a barge-in (turn strategies)", self)
        elif isinstance(frame, UserStartedSpeakingFrame):
            await self._on_user_started(frame, direction, waiting)
        elif isinstance(frame, UserStoppedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            await self._on_user_stopped(frame, direction)
        elif isinstance(frame, VADUserStartedSpeakingFrame) and self._turn_gate is not None:
            self._turn_gate.vad_started(frame.start_secs)
            await super().process_frame(frame, direction)
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self._turn_gate is not None:
            self._turn_gate.vad_stopped(frame.stop_secs)
            await super().process_frame(frame, direction)
        elif isinstance(frame, TranscriptionFrame | InterimTranscriptionFrame):
            if self._stop_timer is not None:
                self._arm_stop_timer()  # the STT is still at work: count from its last word
            if await self._held_transcript(frame):
                return
            await super().process_frame(frame, direction)
        elif isinstance(frame, LLMMessagesUpdateFrame):
            self.set_messages(frame.messages)
            if frame.run_llm:
                await self.push_context_frame()
        elif isinstance(frame, LLMMessagesTransformFrame):
            self.transform_messages(frame.transform)
            if frame.run_llm:
                await self.push_context_frame()
        elif isinstance(frame, LLMSetToolsFrame):
            self._announce_tool_changes(frame.tools)
            self.set_tools(frame.tools)
            await self.push_frame(frame, direction)  # a speech-to-speech service needs it too
        elif isinstance(frame, LLMSetToolChoiceFrame):
            self.set_tool_choice(frame.tool_choice)
        elif isinstance(frame, UserIdleTimeoutUpdateFrame):
            pass  # consumed: the idle controller has applied it
        elif isinstance(frame, ProposedUserStartedSpeakingFrame):
            resolver = self._strategies.proposed_start_resolver()
            if resolver is None:
                await self.push_frame(frame, direction)  # for a resolver further down
            else:
                await self._start_turn_here(resolver.turn_started_params())
        elif isinstance(frame, ProposedUserStoppedSpeakingFrame):
            if self._strategies.proposed_stop_resolver() is None:
                await self.push_frame(frame, direction)
            else:
                await self._stop_turn_here()
        elif isinstance(frame, ServiceMetadataFrame):
            await self._on_service_metadata(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserTurnInferenceCompletedFrame):
            await self._on_turn_completed()
            await self.push_frame(frame, direction)
        elif (
            isinstance(frame, EagerTranscriptionFrame)
            and self._eager is not None
            and direction is FrameDirection.DOWNSTREAM
        ):
            await self._speculate(self._eager, frame.text)
        elif isinstance(frame, EagerEndOfTurnCancelFrame):
            self._take_speculation()  # the STT (or the LLM service) withdrew it
            await self.push_frame(frame, direction)
        else:
            await super().process_frame(frame, direction)

    # ------------------------------------------------------------------ service metadata

    async def _on_service_metadata(self, frame: ServiceMetadataFrame) -> None:
        if isinstance(frame, STTMetadataFrame) and frame.ttfs_p99_latency > 0:
            self._stt_latency = frame.ttfs_p99_latency
            self._strategies.update_stt_timeout(frame.ttfs_p99_latency)
        recommended = frame.user_turn_strategies
        if recommended is None:
            return
        if not isinstance(recommended, UserTurnStrategies):
            logger.warning(
                "%s: %s recommended turn strategies of type %s; ignored",
                self,
                frame.service_name,
                type(recommended).__name__,
            )
            return
        if self._user_params.user_turn_strategies is not None:
            logger.debug(
                "%s: keeping the bot's turn strategies over those of %s", self, frame.service_name
            )
            return
        if recommended is self._strategies:
            return
        logger.debug("%s: using the turn strategies recommended by %s", self, frame.service_name)
        old_gate = self._turn_gate
        self._use_strategies(recommended)
        if old_gate is not None and old_gate is not self._turn_gate:
            await old_gate.close()
        self._update_hooks()  # the caller's audio may now be needed (or no longer)

    def _transcript_wait(self) -> float:
        floor = self._params.aggregation_timeout
        if not self._turn_ended or self._stt_latency <= 0:
            return floor
        return self._strategies.transcript_wait(floor, self._latency.vad_stop_secs)

    # ------------------------------------------------------------------ typed input

    async def _on_typed_text(self, text: str) -> None:
        if not self._turn_open:
            self._turn_open = True
            self._stop_timed_out = False
            self._turn_interrupted_bot = False
            self._turn_started_at = _now_iso()
            await self._call_event_handler("on_user_turn_started", None)
        await super()._on_typed_text(text)

    # ------------------------------------------------------------------ wake phrase

    async def _asleep_drops(
        self, wake: WakePhraseUserTurnStartStrategy, frame: Frame, direction: FrameDirection
    ) -> bool:
        """Whether ``frame`` is dropped because no wake phrase was heard yet; a transcript
        holding one starts the turn."""
        if wake.awake or self._turn_open:
            if isinstance(
                frame,
                UserStartedSpeakingFrame
                | TranscriptionFrame
                | BotStartedSpeakingFrame
                | BotStoppedSpeakingFrame,
            ):
                wake.activity()
            return False
        if isinstance(frame, UserStartedSpeakingFrame):
            self._caller_heard_asleep = True
            return True
        if isinstance(frame, UserStoppedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            self._caller_heard_asleep = False
            return True
        if isinstance(frame, TranscriptionFrame):
            if not await wake.check_transcript(frame.text):
                return True
            started = UserStartedSpeakingFrame()
            self._idle.process_frame(started)
            await self._on_user_started(started, FrameDirection.DOWNSTREAM, True)
            await super().process_frame(frame, direction)
            if not self._caller_heard_asleep:
                await self._stop_turn_here()
            return True
        return isinstance(
            frame, InterruptionFrame | InterimTranscriptionFrame | ProposedUserStartedSpeakingFrame
        )

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

    async def _on_user_started(
        self, frame: Frame, direction: FrameDirection, waiting: bool
    ) -> None:
        """The caller speaks; ``waiting``: the bot was waiting for them (nothing to cut off)."""
        self._caller_speaking = True
        self._cancel_stop_timer()
        resumed = self._turn_gate is not None and self._turn_gate.user_started()
        if resumed:
            # The end-of-turn model held the turn open and the caller went on: same turn.
            await super().process_frame(frame, direction)
            return
        # While the bot speaks, a min-words strategy holds the barge-in (and the turn) until
        # enough words were transcribed.
        self._held_turn = self._bot_is_speaking and self._strategies.min_words > 1
        if self._turn_open:
            # Nothing transcribed of the caller's last words yet: the turn goes on, as in 1.14.
            await super().process_frame(frame, direction)
            return
        self._turn_open = True
        self._stop_timed_out = False
        self._turn_interrupted_bot = (
            not waiting
            and not self._held_turn
            and self._strategies.interruptions_enabled
            and self.interruptions_allowed
        )
        self._turn_started_at = _now_iso()
        self._speculation_confirmed = False
        await super().process_frame(frame, direction)
        start = self._strategies.start[0] if self._strategies.start else None
        await self._call_event_handler("on_user_turn_started", start)

    async def _on_user_stopped(self, frame: Frame, direction: FrameDirection) -> None:
        """The caller went quiet: the turn ends, unless an end-of-turn model says otherwise."""
        self._caller_speaking = False
        if self._speculation is not None:
            await self._settle_speculation(self._speculation)
        if self._turn_open:
            self._arm_stop_timer()
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

    async def _run_vad(self, controller: VADController, frame: InputAudioRawFrame) -> None:
        change = await controller.process_audio(frame.audio)
        if change is SpeechChange.STARTED:
            await self._vad_started(controller)
        elif change is SpeechChange.STOPPED:
            await self._vad_stopped(controller)

    async def _vad_started(self, controller: VADController) -> None:
        start_secs = controller.params.start_secs
        await self.push_frame(VADUserStartedSpeakingFrame(start_secs=start_secs))
        if self._turn_gate is not None:
            self._turn_gate.vad_started(start_secs)
        if controller.audio_idle_timeout > 0:
            self._arm_audio_idle_check(controller.audio_idle_timeout)
        wake = self._wake
        if wake is not None and not (wake.awake or self._turn_open):
            self._caller_heard_asleep = True  # no turn before the wake phrase
        elif self._strategies.proposed_start_resolver() is None:
            start = self._strategies.start[0] if self._strategies.start else None
            params = (
                start.turn_started_params(
                    enable_interruptions=self._strategies.interruptions_enabled
                )
                if start is not None
                else UserTurnStartedParams(
                    enable_interruptions=False, enable_user_speaking_frames=True
                )
            )
            await self._start_turn_here(params)

    async def _vad_stopped(self, controller: VADController) -> None:
        self._cancel_audio_idle_check()
        stop_secs = controller.params.stop_secs
        vad_stop = VADUserStoppedSpeakingFrame(stop_secs=stop_secs)
        if self._turn_gate is not None:
            self._turn_gate.vad_stopped(stop_secs)
        await super().process_frame(vad_stop, FrameDirection.DOWNSTREAM)
        wake = self._wake
        if wake is not None and not (wake.awake or self._turn_open):
            self._caller_heard_asleep = False
        elif self._strategies.proposed_stop_resolver() is None:
            await self._stop_turn_here()

    async def _start_turn_here(self, params: UserTurnStartedParams) -> None:
        """A turn decided in this aggregator (its VAD, or a proposal): announce it both ways
        and, if ``params`` say so, cut the bot off."""
        waiting = self._idle.waiting_for_user
        started = UserStartedSpeakingFrame()
        self._idle.process_frame(started)
        await self._on_user_started(started, FrameDirection.DOWNSTREAM, waiting)
        await self.push_frame(UserStartedSpeakingFrame(), FrameDirection.UPSTREAM)
        if params.enable_interruptions and self.interruptions_allowed and not self._held_turn:
            self._release_next_interruption = True
            await self.push_frame(BotInterruptionFrame(), FrameDirection.UPSTREAM)

    async def _stop_turn_here(self) -> None:
        """The caller stopped, as decided in this aggregator: announce it both ways."""
        await self._on_user_stopped(UserStoppedSpeakingFrame(), FrameDirection.DOWNSTREAM)
        await self.push_frame(UserStoppedSpeakingFrame(), FrameDirection.UPSTREAM)
        self._idle.process_frame(UserStoppedSpeakingFrame())

    def _arm_audio_idle_check(self, delay: float) -> None:
        """Look at the audio's arrival once per ``audio_idle_timeout`` while the caller speaks
        (the audio path only stamps the time, in the VAD controller)."""
        loop = asyncio.get_running_loop()
        self._audio_idle_check = loop.call_later(delay, self._check_audio_idle)

    def _cancel_audio_idle_check(self) -> None:
        if self._audio_idle_check is not None:
            self._audio_idle_check.cancel()
            self._audio_idle_check = None

    def _check_audio_idle(self) -> None:
        self._audio_idle_check = None
        controller = self._vad_controller
        if controller is None or not controller.speaking:
            return
        timeout = controller.audio_idle_timeout
        idle = time.monotonic() - controller.last_audio_time
        if self._muted:
            self._arm_audio_idle_check(timeout)  # not analysed while muted, not idle
        elif idle < timeout:
            self._arm_audio_idle_check(timeout - idle)
        else:
            self.create_task(self._audio_went_idle(controller, idle), "vad-audio-idle")

    async def _audio_went_idle(self, controller: VADController, idle: float) -> None:
        if await controller.force_stop():
            logger.debug("%s: no caller audio for %.1fs mid-speech; speech stopped", self, idle)
            await self._vad_stopped(controller)

    # ------------------------------------------------------------------ stop timeout, empty turns

    def _arm_stop_timer(self) -> None:
        timeout = self._user_params.user_turn_stop_timeout
        if timeout <= 0:
            return
        self._cancel_stop_timer()
        loop = asyncio.get_running_loop()
        self._stop_timer = loop.call_later(timeout, self._on_stop_timer)

    def _cancel_stop_timer(self) -> None:
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_stop_timer()
        self._cancel_audio_idle_check()

    def _on_stop_timer(self) -> None:
        self._stop_timer = None
        self.create_task(self._stop_timeout(), "user-turn-stop-timeout")

    async def _stop_timeout(self) -> None:
        """No stop ended the turn in time after the caller went quiet: end it now."""
        gate = self._turn_gate
        held = gate is not None and gate.held
        if not self._turn_open or self._caller_speaking:
            return
        if not held and not self._turn_ended:
            return  # the end-of-turn model is still deciding; its verdict ends the turn
        logger.debug("%s: user turn still open after the stop timeout; ending it", self)
        self._stop_timed_out = True
        await self._call_event_handler("on_user_turn_stop_timeout")
        if not self._turn_open or self._caller_speaking:
            return
        if gate is not None and gate.held:
            await gate.release()  # the turn ends as if the model had said so
        elif self._turn_ended and not self._speaking:
            await self._cancel_timer()
            await super()._timeout()  # the interim if there is one, else an empty turn

    async def _timeout(self) -> None:
        if self._stop_timer is not None and not self._parts and not self._interim:
            # Nothing transcribed yet: a late final may still come; the stop timeout decides.
            self._timer = None
            return
        await super()._timeout()

    def _close_turn(self) -> None:
        self._turn_open = False
        self._cancel_stop_timer()

    async def _on_empty_turn(self) -> None:
        if self._take_speculation() is not None:
            await self.push_frame(EagerEndOfTurnCancelFrame())  # nothing was said to answer
        if not self._turn_open:
            self._idle.wait_for_user()
            return
        interrupted = self._turn_interrupted_bot
        self._close_turn()
        if self._wake is not None:
            self._wake.turn_ended()
        stop = (
            None if self._stop_timed_out or not self._strategies.stop else self._strategies.stop[0]
        )
        message = UserTurnStoppedMessage(content="", timestamp=self._turn_started_at)
        await self._call_event_handler("on_user_turn_stopped", stop, message)
        if not await self._answer_empty_turn(interrupted):
            self._idle.wait_for_user()

    async def _answer_empty_turn(self, interrupted: bool) -> bool:
        """Run the LLM with the configured prompt for a turn without words; True if it ran."""
        config = self._user_params.empty_user_turn
        if config is None:
            return False
        prompt = config.interrupted_prompt if interrupted else config.idle_prompt
        if not prompt:
            return False
        if self._empty_recoveries >= config.max_consecutive_recoveries:
            logger.debug("%s: empty user turn left unanswered (too many in a row)", self)
            return False
        if self._muted or self._function_calls:
            return False  # a pending function result runs the LLM itself
        logger.debug(
            "%s: empty user turn (%s); running the LLM",
            self,
            "interrupted" if interrupted else "idle",
        )
        self._empty_recoveries += 1
        self._context.add_message({"role": "system", "content": prompt})
        await self.push_context_frame()
        return True

    # ------------------------------------------------------------------ eager end of turn

    async def _speculate(self, eager: EagerUserTurnStopStrategy, text: str) -> None:
        """The STT predicts the turn ended: run the LLM now on a copy of the context holding
        the predicted text; the LLM service holds the reply until the turn is confirmed."""
        context = self._context
        spoken = " ".join([*self._parts, text.strip()]).strip()
        if self._muted or not spoken:
            return
        if not isinstance(context, LLMContext):
            logger.debug("%s: eager end of turn needs an LLMContext; not answered early", self)
            return
        if self._take_speculation() is not None:
            await self.push_frame(EagerEndOfTurnCancelFrame())  # replaced by this prediction
        speculation = self._speculation = UserTurnSpeculation(text=spoken)
        loop = asyncio.get_running_loop()
        self._speculation_timer = loop.call_later(
            eager.speculation_timeout, self._on_speculation_timer, speculation
        )
        logger.debug("%s: answering an eager end of turn ahead of time", self)
        provisional = ProvisionalLLMContext(context, spoken)
        await self.push_frame(LLMContextFrame(context=provisional, speculation=True))
        await self._call_event_handler("on_user_turn_inference_triggered", eager)

    def _take_speculation(self) -> UserTurnSpeculation | None:
        """Forget the speculation in flight (stopping its timeout) and return it."""
        speculation, self._speculation = self._speculation, None
        if self._speculation_timer is not None:
            self._speculation_timer.cancel()
            self._speculation_timer = None
        return speculation

    def _on_speculation_timer(self, speculation: UserTurnSpeculation) -> None:
        self._speculation_timer = None
        if self._speculation is speculation:
            self.create_task(self._speculation_timed_out(speculation), "speculation-timeout")

    async def _speculation_timed_out(self, speculation: UserTurnSpeculation) -> None:
        if self._speculation is not speculation:
            return
        logger.debug("%s: eager end of turn never resolved; withdrawing its answer", self)
        self._take_speculation()
        await self.push_frame(EagerEndOfTurnCancelFrame())

    async def _settle_speculation(self, speculation: UserTurnSpeculation) -> None:
        """The turn ends: keep the held answer if the committed transcript is in and matches
        (the ``UserStoppedSpeakingFrame`` about to go down releases it), else withdraw it."""
        self._take_speculation()
        eager = self._eager
        committed = " ".join(self._parts)
        ready = bool(self._parts) and self._interim is None and not self._transcripts_queued()
        if ready and eager is not None and eager.match_policy.matches(speculation.text, committed):
            logger.debug("%s: eager end of turn confirmed; keeping its answer", self)
            self._speculation_confirmed = True
            return
        logger.debug("%s: committed transcript differs from the eager one; answering anew", self)
        await self.push_frame(EagerEndOfTurnCancelFrame())

    async def _answer_turn(self) -> None:
        if self._speculation_confirmed:
            self._speculation_confirmed = False  # answered already, by the released reply
            return
        await super()._answer_turn()
        if not self._stop_timed_out:
            # As in 1.14, a turn the stop timeout ended runs the LLM without this event.
            stop = self._strategies.stop[0] if self._strategies.stop else None
            await self._call_event_handler("on_user_turn_inference_triggered", stop)

    # ------------------------------------------------------------------ hooks and events

    async def _on_turn_added(self, text: str) -> None:
        self._close_turn()
        if self._wake is not None:
            self._wake.turn_ended()
        self._empty_recoveries = 0
        timestamp = self._turn_started_at or _now_iso()
        await self.push_frame(LLMContextUserTurnFrame(text=text, timestamp=timestamp))
        await self.push_frame(
            LLMContextUserTurnFrame(text=text, timestamp=timestamp), FrameDirection.UPSTREAM
        )
        if self._completion is not None:
            # The LLM decides whether the caller finished: the stop waits for its verdict.
            pending = self._pending_stop
            self._pending_stop = (
                (f"{pending[0]} {text}", pending[1]) if pending else (text, timestamp)
            )
        else:
            stop = self._strategies.stop[0] if self._strategies.stop else None
            message = UserTurnStoppedMessage(content=text, timestamp=timestamp)
            await self._call_event_handler("on_user_turn_stopped", stop, message)
        await self._call_event_handler(
            "on_user_turn_message_added",
            UserTurnMessageAddedMessage(content=text, timestamp=timestamp),
        )

    async def _on_turn_completed(self) -> None:
        """The LLM found the caller's turn complete: report the words it was waiting on."""
        pending, self._pending_stop = self._pending_stop, None
        if pending is None:
            return
        message = UserTurnStoppedMessage(content=pending[0], timestamp=pending[1])
        await self._call_event_handler("on_user_turn_stopped", self._completion, message)

    async def _on_idle(self) -> None:
        await self._call_event_handler("on_user_turn_idle")

    async def cleanup(self) -> None:
        self._idle.close()
        self._cancel_timers()
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
        self._assistant_params = params or LLMAssistantAggregatorParams()
        super().__init__(
            context,
            params=_LegacyAssistantParams(),
            latency=latency,
            add_tool_change_messages=self._assistant_params.add_tool_change_messages,
            **kwargs,
        )
        self._turn_open = False
        self._turn_started_at = ""
        self._turn_message: dict[str, Any] | None = None
        self._spoke_in_turn = False
        self._thought_started_at = ""
        # The function calls announced and not yet finished or cancelled, by tool call id, with
        # their in-progress frame once it came (it says whether the model waits on the result).
        self._function_calls_in_progress: dict[str, FunctionCallInProgressFrame | None] = {}
        # Calls cancelled before their in-progress frame came (a cancel overtakes it).
        self._function_calls_cancelled: set[str] = set()
        # Always made, so an LLMSummarizeContextFrame works with automatic summaries off.
        self._summarizer = LLMContextSummarizer(
            context=context,
            config=self._assistant_params.auto_context_summarization_config,
            auto_trigger=self._assistant_params.enable_auto_context_summarization,
        )
        self._summarizer.add_event_handler(
            "on_request_summarization", self._on_request_summarization
        )
        self._summarizer.add_event_handler("on_summary_applied", self._on_summary_applied)
        self._register_event_handler("on_assistant_turn_started")
        self._register_event_handler("on_assistant_turn_stopped")
        self._register_event_handler("on_assistant_thought")
        self._register_event_handler("on_assistant_backchannel")
        self._register_event_handler("on_summary_applied")

    @property
    def has_function_calls_in_progress(self) -> bool:
        """Whether a function call the LLM asked for has not finished (nor been cancelled)."""
        return bool(self._function_calls_in_progress)

    @property
    def has_synchronous_function_calls_in_progress(self) -> bool:
        """Whether an unfinished call is one the model waits on (``cancel_on_interruption``);
        a call whose in-progress frame has not come yet counts as one."""
        return any(
            frame is None or frame.cancel_on_interruption
            for frame in self._function_calls_in_progress.values()
        )

    @property
    def summarizer(self) -> LLMContextSummarizer:
        """The context summarizer (see :mod:`~callpipe.processors.aggregators.
        llm_context_summarizer`)."""
        return self._summarizer

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, LLMFullResponseStartFrame) and not self._turn_open:
            await super().process_frame(frame, direction)
            self._turn_open = True
            self._turn_message = None
            self._spoke_in_turn = self._bot_speaking
            self._turn_started_at = _now_iso()
            await self._call_event_handler("on_assistant_turn_started")
        elif isinstance(frame, LLMFullResponseEndFrame):
            await super().process_frame(frame, direction)
            unspoken = self._turn_message is not None and not self._heard_words
            if unspoken and self._turn_open and not self._spoke_in_turn and not self._bot_speaking:
                # The reply's text was all passed on unspoken (skip_tts): no bot speech will
                # end the turn, so the reply's end does, as in 1.14.
                await self._finish_turn(interrupted=False)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._spoke_in_turn = True
            await super().process_frame(frame, direction)
        elif isinstance(frame, LLMThoughtStartFrame):
            self._thought_started_at = _now_iso()
            await super().process_frame(frame, direction)
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
        elif isinstance(
            frame,
            FunctionCallsStartedFrame
            | FunctionCallInProgressFrame
            | FunctionCallResultFrame
            | FunctionCallCancelFrame,
        ):
            self._track_function_call(frame)
            await super().process_frame(frame, direction)
        elif (
            isinstance(frame, LLMSetToolsFrame | LLMSetToolChoiceFrame)
            and direction is FrameDirection.UPSTREAM
        ):
            # Pushed up from after this aggregator: applied (and consumed) here, as in 1.14.
            # Going down, the user aggregator applied it already; applying it again here, maybe
            # after a newer one, would bring back older tools.
            if isinstance(frame, LLMSetToolsFrame):
                self._announce_tool_changes(frame.tools)
                self.set_tools(frame.tools)
            else:
                self.set_tool_choice(frame.tool_choice)
        elif (
            isinstance(frame, AggregatedTextFrame)
            and not isinstance(frame, TTSTextFrame)
            and frame.text_type == TextType.BACKCHANNEL
            and frame.will_be_spoken
        ):
            # A TTS service lets the piece it is about to speak go ahead of its audio.
            message = AssistantBackchannelMessage(content=frame.text, timestamp=_now_iso())
            await self._call_event_handler("on_assistant_backchannel", message)
            await super().process_frame(frame, direction)
        elif isinstance(frame, LLMContextSummaryResultFrame | LLMSummarizeContextFrame):
            await super().process_frame(frame, direction)
            await self._summarizer.process_frame(frame)
        elif isinstance(frame, EndFrame | CancelFrame):
            await self._summarizer.cleanup()
            await super().process_frame(frame, direction)
        else:
            await super().process_frame(frame, direction)

    def _commit(self, *, interrupted: bool) -> None:
        super()._commit(interrupted=interrupted)
        if self._message is not None:
            self._turn_message = self._message

    def _track_function_call(
        self,
        frame: FunctionCallsStartedFrame
        | FunctionCallInProgressFrame
        | FunctionCallResultFrame
        | FunctionCallCancelFrame,
    ) -> None:
        calls = self._function_calls_in_progress
        if isinstance(frame, FunctionCallsStartedFrame):
            for call in frame.function_calls:
                calls[call.tool_call_id] = None
        elif isinstance(frame, FunctionCallInProgressFrame):
            if frame.tool_call_id in self._function_calls_cancelled:
                self._function_calls_cancelled.discard(frame.tool_call_id)
            else:
                calls[frame.tool_call_id] = frame
        elif isinstance(frame, FunctionCallResultFrame):
            final = frame.properties is None or frame.properties.is_final
            if final:
                calls.pop(frame.tool_call_id, None)
        else:
            if calls.pop(frame.tool_call_id, False) is None:
                self._function_calls_cancelled.add(frame.tool_call_id)

    async def _finish_turn(self, *, interrupted: bool) -> None:
        if not self._turn_open:
            return
        self._turn_open = False
        message, self._turn_message = self._turn_message, None
        content = str(message.get("content") or "") if message is not None else ""
        content = self._strip_markers(content)
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
        await self._summarizer.maybe_summarize()

    def _strip_markers(self, text: str) -> str:
        """The turn's text without turn-completion markers (they stay in the context)."""
        found = False
        for marker in _TURN_MARKERS | self._markers:
            if marker in text:
                text = text.replace(marker, "")
                found = True
        return text.strip() if found else text

    async def _on_thought(self, text: str) -> None:
        message = AssistantThoughtMessage(content=text, timestamp=self._thought_started_at)
        await self._call_event_handler("on_assistant_thought", message)

    async def _on_request_summarization(
        self, summarizer: LLMContextSummarizer, request: LLMContextSummaryRequestFrame
    ) -> None:
        """The LLM service sits upstream; it answers with a result frame coming back down."""
        await self.push_frame(request, FrameDirection.UPSTREAM)

    async def _on_summary_applied(
        self, summarizer: LLMContextSummarizer, event: SummaryAppliedEvent
    ) -> None:
        await self._call_event_handler("on_summary_applied", summarizer, event)

    async def cleanup(self) -> None:
        await self._summarizer.cleanup()
        await super().cleanup()


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
        if add_tool_change_messages is not None:
            # As in 1.14: set on both sides, over what their params say.
            user_params = user_params or LLMUserAggregatorParams()
            assistant_params = assistant_params or LLMAssistantAggregatorParams()
            user_params.add_tool_change_messages = add_tool_change_messages
            assistant_params.add_tool_change_messages = add_tool_change_messages
        latency = TurnLatencyTracker()
        self._user = LLMUserAggregator(context, params=user_params, latency=latency)
        self._assistant = LLMAssistantAggregator(context, params=assistant_params, latency=latency)

    def user(self) -> LLMUserAggregator:
        return self._user

    def assistant(self) -> LLMAssistantAggregator:
        return self._assistant

    def __iter__(self) -> Iterator[LLMUserAggregator | LLMAssistantAggregator]:
        return iter((self._user, self._assistant))
