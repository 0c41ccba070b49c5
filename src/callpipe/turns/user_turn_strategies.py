"""User turn start/stop strategies as the 1.14 user aggregator reads them.

callpipe's user aggregator has one turn model: the turn starts when the caller is heard (VAD,
or a transcript when no VAD runs) and ends when the caller stopped and the final transcript
is in. The strategies tune that model rather than replace it:

- ``enable_interruptions=False`` on the start strategies: a new turn never cuts the bot off.
- :class:`MinWordsUserTurnStartStrategy`: while the bot is speaking, the caller interrupts only
  once ``min_words`` words were transcribed ("uh-huh" does not cut the bot off).
- :class:`SpeechTimeoutUserTurnStopStrategy`: ``user_speech_timeout`` is how long to wait for
  more after the caller paused and the transcript is late.
- External strategies: turns come only from frames another processor emits.

The smart-turn model plugs in as :class:`~callpipe.turns.user_stop.TurnAnalyzerUserTurnStopStrategy`
(its own module): the aggregator asks it at each VAD stop whether the turn is over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class BaseUserTurnStartStrategy:
    """Base of start strategies: ``enable_interruptions`` says whether a turn cuts the bot off."""

    def __init__(
        self,
        *,
        enable_interruptions: bool = True,
        enable_user_speaking_frames: bool | None = None,
        **kwargs: Any,
    ) -> None:
        self.enable_interruptions = enable_interruptions
        self.enable_user_speaking_frames = enable_user_speaking_frames

    def __str__(self) -> str:
        return type(self).__name__


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
    """Turn starts come from ``UserStartedSpeakingFrame``s another processor pushes."""


class BaseUserTurnStopStrategy:
    """Base of stop strategies."""

    def __init__(self, **kwargs: Any) -> None:
        pass

    def __str__(self) -> str:
        return type(self).__name__


class SpeechTimeoutUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """The turn ends ``user_speech_timeout`` after the caller paused (transcript permitting)."""

    def __init__(
        self, *, user_speech_timeout: float = 0.6, wait_for_transcript: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.user_speech_timeout = user_speech_timeout
        self.wait_for_transcript = wait_for_transcript


class ExternalUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """Turn ends come from ``UserStoppedSpeakingFrame``s another processor pushes."""


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
        return None


def _external_start() -> list[BaseUserTurnStartStrategy]:
    return [ExternalUserTurnStartStrategy()]


def _external_stop() -> list[BaseUserTurnStopStrategy]:
    return [ExternalUserTurnStopStrategy()]


@dataclass
class ExternalUserTurnStrategies(UserTurnStrategies):
    """Turns driven by another processor's speaking frames."""

    start: list[BaseUserTurnStartStrategy] | None = field(default_factory=_external_start)
    stop: list[BaseUserTurnStopStrategy] | None = field(default_factory=_external_stop)
