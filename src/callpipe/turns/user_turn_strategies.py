"""User turn start/stop strategies as the 1.14 user aggregator reads them.

callpipe's user aggregator has one turn model: the turn starts when the caller is heard (VAD,
or a transcript when no VAD runs) and ends when the caller stopped and the final transcript
is in. The strategies tune that model rather than replace it:

- ``enable_interruptions=False`` on the start strategies: a new turn never cuts the bot off.
- :class:`MinWordsUserTurnStartStrategy`: while the bot is speaking, the caller interrupts only
  once ``min_words`` words were transcribed ("uh-huh" does not cut the bot off).
- :class:`SpeechTimeoutUserTurnStopStrategy`: ``user_speech_timeout`` is how long to wait for
  more after the caller paused and the transcript is late; once an STT service reported its
  p99 time to a final transcript (``STTMetadataFrame``), the wait is at least that time minus
  the VAD's stop delay.
- External strategies: turns come from frames another processor emits. A
  ``ProposedUserStartedSpeakingFrame`` / ``ProposedUserStoppedSpeakingFrame`` (a service with
  its own turn detection) is decided by the aggregator: it announces the turn and, if
  ``enable_interruptions``, cuts the bot off. A ``UserStartedSpeakingFrame`` was already
  announced and is simply followed.
- :class:`~callpipe.turns.user_start.WakePhraseUserTurnStartStrategy`: the caller is ignored
  until a final transcript contains a wake phrase.

- :class:`EagerUserTurnStrategies`: external turns, plus an answer started on the STT's eager
  end of turn (``EagerTranscriptionFrame``) and held until the committed transcript confirms
  it (per an :class:`EagerMatchPolicy`); see :mod:`callpipe.turns.speculation_gate`.
- :class:`FilterIncompleteUserTurnStrategies`: the LLM judges whether the caller finished (the
  turn-completion markers of :mod:`callpipe.turns.user_turn_completion_mixin`); the turn ends
  for ``on_user_turn_stopped`` only on its ``●``.

The smart-turn model plugs in as :class:`~callpipe.turns.user_stop.TurnAnalyzerUserTurnStopStrategy`
(its own module): the aggregator asks it at each VAD stop whether the turn is over.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from callpipe.frames.frames import LLMUpdateSettingsFrame
from callpipe.processors.base_object import BaseObject
from callpipe.turns.user_turn_completion_mixin import UserTurnCompletionConfig

logger = logging.getLogger(__name__)


DEFAULT_SPEECH_TIMEOUT = 0.5
"""Seconds the turn logic waits for a late transcript after the caller stopped when no stop
strategy names a wait (callpipe's default; the user aggregator and ``UserTurnProcessor``)."""


@dataclass
class UserTurnStartedParams:
    """How the aggregator handles a turn a strategy starts.

    Parameters:
        enable_interruptions: The turn cuts the bot off.
        enable_user_speaking_frames: The aggregator announces the turn with a
            ``UserStartedSpeakingFrame`` (False when another processor already did).
    """

    enable_interruptions: bool
    enable_user_speaking_frames: bool


@dataclass
class UserTurnStoppedParams:
    """How the aggregator handles a turn end a strategy decides.

    Parameters:
        enable_user_speaking_frames: The aggregator announces the end with a
            ``UserStoppedSpeakingFrame`` (False when another processor already did).
        confirms_speculation: The end confirms an answer prepared in advance from an eager
            end of turn (1.14's field; callpipe's aggregator keeps this state itself, see
            :class:`EagerUserTurnStopStrategy`).
    """

    enable_user_speaking_frames: bool
    confirms_speculation: bool = False


class BaseUserTurnStartStrategy(BaseObject):
    """Base of start strategies: ``enable_interruptions`` says whether a turn cuts the bot off."""

    def __init__(
        self,
        *,
        enable_interruptions: bool = True,
        enable_user_speaking_frames: bool | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name)
        self.enable_interruptions = enable_interruptions
        self.enable_user_speaking_frames = enable_user_speaking_frames

    @property
    def resolves_proposed_turn_start_frames(self) -> bool:
        """Whether the aggregator decides ``ProposedUserStartedSpeakingFrame``s for it."""
        return False

    def turn_started_params(
        self,
        *,
        enable_interruptions: bool | None = None,
        enable_user_speaking_frames: bool | None = None,
    ) -> UserTurnStartedParams:
        """The params of a turn this strategy starts; arguments override its configuration."""
        speaking = enable_user_speaking_frames
        if speaking is None:
            speaking = self.enable_user_speaking_frames is not False
        return UserTurnStartedParams(
            enable_interruptions=(
                self.enable_interruptions if enable_interruptions is None else enable_interruptions
            ),
            enable_user_speaking_frames=speaking,
        )

    async def setup(self, setup: Any) -> None:
        """Called once when the aggregator's pipeline is set up."""

    async def cleanup(self) -> None:
        """Called when the aggregator is cleaned up."""


class VADUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """The turn starts when voice activity is detected."""


class TranscriptionUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """The turn starts with a transcript (for pipelines without VAD)."""

    def __init__(self, *, use_interim: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.use_interim = use_interim


class MinWordsUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """While the bot speaks, interrupt only after ``min_words`` transcribed words."""

    def __init__(self, *, min_words: int, use_interim: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_words = min_words
        self.use_interim = use_interim


class ExternalUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """Turn starts come from another processor: a ``ProposedUserStartedSpeakingFrame`` is
    decided (and announced) by the aggregator, a ``UserStartedSpeakingFrame`` is followed."""

    @property
    def resolves_proposed_turn_start_frames(self) -> bool:
        return True


class BaseUserTurnStopStrategy(BaseObject):
    """Base of stop strategies.

    ``stt_timeout`` is the STT service's p99 time from the end of speech to its final
    transcript, set by the aggregator from ``STTMetadataFrame`` (0 until then).
    """

    def __init__(self, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name)
        self.stt_timeout = 0.0

    @property
    def resolves_proposed_turn_stop_frames(self) -> bool:
        """Whether the aggregator decides ``ProposedUserStoppedSpeakingFrame``s for it."""
        return False

    def update_stt_timeout(self, ttfs_p99_latency: float) -> None:
        self.stt_timeout = max(0.0, ttfs_p99_latency)

    def transcript_wait(self, floor: float, vad_stop_secs: float) -> float:
        """After the caller stopped, how long to wait for a final transcript still due."""
        return floor

    async def setup(self, setup: Any) -> None:
        """Called once when the aggregator's pipeline is set up."""

    async def cleanup(self) -> None:
        """Called when the aggregator is cleaned up."""


def wait_for_stt(floor: float, stt_timeout: float, vad_stop_secs: float) -> float:
    """``floor``, stretched to the STT's p99 latency counted from the end of speech (the VAD
    already waited ``vad_stop_secs`` of it)."""
    return max(floor, stt_timeout - vad_stop_secs)


class SpeechTimeoutUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """The turn ends ``user_speech_timeout`` after the caller paused (transcript permitting)."""

    def __init__(
        self, *, user_speech_timeout: float = 0.6, wait_for_transcript: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.user_speech_timeout = user_speech_timeout
        self.wait_for_transcript = wait_for_transcript

    def transcript_wait(self, floor: float, vad_stop_secs: float) -> float:
        return wait_for_stt(floor, self.stt_timeout, vad_stop_secs)


class ExternalUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """Turn ends come from another processor: a ``ProposedUserStoppedSpeakingFrame`` is decided
    (and announced) by the aggregator, a ``UserStoppedSpeakingFrame`` is followed. ``timeout``:
    how long to wait after it for a final transcript still due."""

    def __init__(self, *, timeout: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout

    @property
    def resolves_proposed_turn_stop_frames(self) -> bool:
        return True


_QUOTE_MARKS = re.compile(r"['\u2019\u02bc]")
_NOT_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


class EagerMatchPolicy(ABC):
    """Says whether the committed transcript still fits the eager one an answer was made for."""

    @abstractmethod
    def matches(self, eager: str, final: str) -> bool:
        """True to keep the answer made from ``eager``; False to drop it and answer ``final``."""


class ExactMatch(EagerMatchPolicy):
    """Keep the answer only when both transcripts are the same string."""

    def matches(self, eager: str, final: str) -> bool:
        return eager == final


class NormalizedMatch(EagerMatchPolicy):
    """Keep the answer when the transcripts differ only in case, punctuation or spacing (the
    committed transcript usually comes back capitalised and punctuated)."""

    def matches(self, eager: str, final: str) -> bool:
        return _normalized(eager) == _normalized(final)


def _normalized(text: str) -> str:
    text = _QUOTE_MARKS.sub("", unicodedata.normalize("NFKC", text).casefold())
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", text)).strip()


class EagerUserTurnStopStrategy(ExternalUserTurnStopStrategy):
    """External turn ends, with an answer started on the STT's eager end of turn.

    On an ``EagerTranscriptionFrame`` the aggregator runs the LLM on a copy of the context
    holding the eager text (the real context is untouched) and the LLM service holds the reply
    (:class:`~callpipe.turns.speculation_gate.SpeculationGate`). When the turn ends,
    ``match_policy`` (default :class:`NormalizedMatch`) compares the committed transcript with
    the eager one: a match releases the held reply and the LLM does not run again; otherwise,
    or when the STT withdraws the prediction (``EagerEndOfTurnCancelFrame``), the reply is
    dropped and its request cancelled. ``speculation_timeout``: seconds an unresolved
    prediction is kept before it is withdrawn.
    """

    def __init__(
        self,
        *,
        match_policy: EagerMatchPolicy | None = None,
        speculation_timeout: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._match_policy = match_policy or NormalizedMatch()
        self.speculation_timeout = speculation_timeout

    @property
    def match_policy(self) -> EagerMatchPolicy:
        return self._match_policy


class ExternalUserTurnCompletionStopStrategy(BaseUserTurnStopStrategy):
    """Something outside the aggregator judges when the caller's turn is complete: an LLM's
    marker, an STT with turn detection, a classifier of your own. The caller's words go to the
    LLM at each pause as usual; ``on_user_turn_stopped`` waits for a
    ``UserTurnInferenceCompletedFrame`` (pushed by that component) and reports every segment
    since the last one. A verdict that never comes leaves the turn open until the next one.
    """

    def llm_settings_frame(self) -> LLMUpdateSettingsFrame | None:
        """The update the aggregator sends the LLM service at start (None: none)."""
        return None


class DeferredUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """Pipecat 1.14's wrapper that leaves a detector's turn end to another strategy
    (:func:`deferred`). callpipe's turn end already only sends the words to the LLM when a
    completion strategy is in the list, so :class:`UserTurnStrategies` uses :attr:`inner` in
    its place."""

    def __init__(self, inner: BaseUserTurnStopStrategy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._inner = inner

    @property
    def inner(self) -> BaseUserTurnStopStrategy:
        return self._inner


def deferred(strategy: BaseUserTurnStopStrategy) -> DeferredUserTurnStopStrategy:
    """``strategy`` drives when the LLM runs, and another strategy of the list (e.g.
    :class:`LLMTurnCompletionUserTurnStopStrategy`) when the turn ends (Pipecat 1.14)."""
    return DeferredUserTurnStopStrategy(strategy)


class LLMTurnCompletionUserTurnStopStrategy(ExternalUserTurnCompletionStopStrategy):
    """The LLM's verdict ends the turn (``config``: markers, waits, prompts).

    The caller's words still go to the LLM when they pause. At start the aggregator sends the
    LLM service :meth:`llm_settings_frame`, which turns on ``filter_incomplete_user_turns``;
    ``on_user_turn_stopped`` then waits for a ``UserTurnInferenceCompletedFrame`` (a reply that
    began with ``●``, or a tool call) and reports every segment the caller said until then.
    """

    def __init__(self, *, config: UserTurnCompletionConfig | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._config = config or UserTurnCompletionConfig()

    @property
    def config(self) -> UserTurnCompletionConfig:
        return self._config

    def llm_settings_frame(self) -> LLMUpdateSettingsFrame:
        """The update that turns the marker protocol on in the LLM service (every service
        behind a ``ServiceSwitcher``, so a switch keeps it)."""
        return LLMUpdateSettingsFrame(
            settings={
                "filter_incomplete_user_turns": True,
                "user_turn_completion_config": self._config,
            },
            reach_inactive_services=True,
        )


_T = TypeVar("_T")


def first_of(strategies: Iterable[object] | None, cls: type[_T]) -> _T | None:
    """The first of ``strategies`` that is a ``cls``, if any."""
    return next((s for s in strategies or () if isinstance(s, cls)), None)


def default_user_turn_start_strategies() -> list[BaseUserTurnStartStrategy]:
    return [VADUserTurnStartStrategy(), TranscriptionUserTurnStartStrategy()]


def default_user_turn_stop_strategies() -> list[BaseUserTurnStopStrategy]:
    return [SpeechTimeoutUserTurnStopStrategy()]


@dataclass
class UserTurnStrategies:
    """Start and stop strategies (defaults: VAD + transcription start, speech-timeout stop)."""

    start: list[BaseUserTurnStartStrategy] | None = None
    stop: list[BaseUserTurnStopStrategy] | None = None

    def __post_init__(self) -> None:
        if not self.start:
            self.start = default_user_turn_start_strategies()
        if not self.stop:
            self.stop = default_user_turn_stop_strategies()
        if any(isinstance(s, DeferredUserTurnStopStrategy) for s in self.stop):
            self.stop = [
                s.inner if isinstance(s, DeferredUserTurnStopStrategy) else s for s in self.stop
            ]
            if self.completion_strategy() is None and self._needs_completion_strategy():
                logger.warning(
                    "deferred(...) stop strategies without a strategy that completes the turn "
                    "(LLMTurnCompletionUserTurnStopStrategy or "
                    "ExternalUserTurnCompletionStopStrategy): they end the turn themselves"
                )

    def _needs_completion_strategy(self) -> bool:
        """Whether ``deferred(...)`` needs a completion strategy in ``stop`` (a subclass
        that adds one itself says no)."""
        return True

    @property
    def interruptions_enabled(self) -> bool:
        return any(s.enable_interruptions for s in self.start or ())

    @property
    def min_words(self) -> int:
        """Words needed to interrupt a speaking bot (1 = any speech)."""
        found = [
            s.min_words for s in self.start or () if isinstance(s, MinWordsUserTurnStartStrategy)
        ]
        return max(found) if found else 1

    @property
    def speech_timeout(self) -> float | None:
        for s in self.stop or ():
            if isinstance(s, SpeechTimeoutUserTurnStopStrategy):
                return s.user_speech_timeout
            if isinstance(s, ExternalUserTurnStopStrategy):
                return s.timeout
        return None

    def proposed_start_resolver(self) -> BaseUserTurnStartStrategy | None:
        """The start strategy that decides ``ProposedUserStartedSpeakingFrame``s, if any."""
        for s in self.start or ():
            if s.resolves_proposed_turn_start_frames:
                return s
        return None

    def proposed_stop_resolver(self) -> BaseUserTurnStopStrategy | None:
        """The stop strategy that decides ``ProposedUserStoppedSpeakingFrame``s, if any."""
        for s in self.stop or ():
            if s.resolves_proposed_turn_stop_frames:
                return s
        return None

    def eager_strategy(self) -> EagerUserTurnStopStrategy | None:
        """The stop strategy that answers eager ends of turn ahead of time, if any."""
        return first_of(self.stop, EagerUserTurnStopStrategy)

    def completion_strategy(self) -> ExternalUserTurnCompletionStopStrategy | None:
        """The stop strategy that waits for a turn-completion verdict (the LLM's, or another
        component's ``UserTurnInferenceCompletedFrame``), if any."""
        return first_of(self.stop, ExternalUserTurnCompletionStopStrategy)

    def update_stt_timeout(self, ttfs_p99_latency: float) -> None:
        for s in self.stop or ():
            s.update_stt_timeout(ttfs_p99_latency)

    def transcript_wait(self, floor: float, vad_stop_secs: float) -> float:
        """The longest wait any stop strategy asks for after the caller stopped."""
        return max(
            (s.transcript_wait(floor, vad_stop_secs) for s in self.stop or ()), default=floor
        )


@dataclass
class ExternalUserTurnStrategies(UserTurnStrategies):
    """Turns driven by another processor (a service with its own turn detection).

    ``enable_interruptions``: whether a turn the aggregator starts from a
    ``ProposedUserStartedSpeakingFrame`` cuts the bot off.
    """

    enable_interruptions: bool = True

    def __post_init__(self) -> None:
        self.start = [ExternalUserTurnStartStrategy(enable_interruptions=self.enable_interruptions)]
        self.stop = [ExternalUserTurnStopStrategy()]


@dataclass
class EagerUserTurnStrategies(ExternalUserTurnStrategies):
    """:class:`ExternalUserTurnStrategies` whose stop answers the STT's eager end of turn ahead
    of the committed one (:class:`EagerUserTurnStopStrategy`). For an STT that predicts turn
    ends, e.g. Deepgram Flux with ``eager_eot_threshold`` set.

    ``match_policy``: when the committed transcript still fits the eager one (default
    :class:`NormalizedMatch`); ``speculation_timeout``: how long an unresolved prediction is
    kept.
    """

    match_policy: EagerMatchPolicy | None = None
    speculation_timeout: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stop = [
            EagerUserTurnStopStrategy(
                match_policy=self.match_policy, speculation_timeout=self.speculation_timeout
            )
        ]


@dataclass
class FilterIncompleteUserTurnStrategies(UserTurnStrategies):
    """The given (or default) strategies, plus the LLM as judge of when the caller finished.

    The turn still goes to the LLM when the caller pauses; the LLM opens its reply with a
    marker (``●`` answer, ``◐`` / ``○`` say nothing and nudge later), and only ``●`` (or a tool
    call) ends the turn for ``on_user_turn_stopped``. ``config``: markers, waits and prompts
    (None: the :class:`~callpipe.turns.user_turn_completion_mixin.UserTurnCompletionConfig`
    defaults).
    """

    config: UserTurnCompletionConfig | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        stop = list(self.stop or ())
        if first_of(stop, LLMTurnCompletionUserTurnStopStrategy) is None:
            stop.append(LLMTurnCompletionUserTurnStopStrategy(config=self.config))
        self.stop = stop

    def _needs_completion_strategy(self) -> bool:
        return False  # the LLM's verdict is added here
