"""Text aggregators: how streamed LLM text is cut into the pieces a TTS speaks.

``TextType`` names what a piece is (the TTS service's ``text_transforms`` are keyed by it).
:class:`BaseTextAggregator` is the interface ``LLMTextProcessor`` drives, as in Pipecat 1.14:
feed text with :meth:`~BaseTextAggregator.aggregate` (an async iterator of finished
:class:`Aggregation`\\ s), take the rest with :meth:`~BaseTextAggregator.flush` at the end of
a reply, and drop it with :meth:`~BaseTextAggregator.handle_interruption`. The implementations
are :class:`~callpipe.utils.text.simple_text_aggregator.SimpleTextAggregator` (sentences),
:class:`~callpipe.utils.text.skip_tags_aggregator.SkipTagsAggregator` and
:class:`~callpipe.utils.text.pattern_pair_aggregator.PatternPairAggregator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum


class TextType(StrEnum):
    """What a piece of text handed to a TTS service is.

    A TTS service in SENTENCE mode passes ``SENTENCE`` (also for ``TTSSpeakFrame`` text and
    text outside an LLM reply), in TOKEN mode ``TOKEN``. ``WORD`` and ``BACKCHANNEL`` exist for
    Pipecat compatibility; callpipe does not produce them. Being a ``StrEnum``, each member
    equals its string (``TextType.SENTENCE == "sentence"``). A pattern aggregator's pieces
    carry the pattern's own type (a plain string such as ``"spell"``).
    """

    BACKCHANNEL = "backchannel"
    SENTENCE = "sentence"
    TOKEN = "token"
    WORD = "word"

    def __str__(self) -> str:
        return self.value


@dataclass
class Aggregation:
    """One finished piece of text and its type (a :class:`TextType` or a custom string)."""

    text: str
    type: str

    def __str__(self) -> str:
        return f"{self.type}: {self.text}"


class BaseTextAggregator(ABC):
    """Cuts streamed text into pieces.

    ``aggregation_type``: ``TextType.SENTENCE`` (the default) holds text until a sentence ends;
    ``TextType.TOKEN`` passes text on as it comes (subclasses still hold back what they must,
    such as an unfinished tag). ``language`` is kept for Pipecat compatibility; callpipe's
    sentence rules are the same for every language.
    """

    def __init__(
        self,
        *,
        aggregation_type: TextType | str = TextType.SENTENCE,
        language: str | None = None,
    ) -> None:
        self._aggregation_type = TextType(aggregation_type)
        self._language = language or "en"

    @property
    def language(self) -> str:
        return self._language

    def set_language(self, language: str | None) -> None:
        """Change the language; text already held is kept."""
        self._language = language or "en"

    @property
    def aggregation_type(self) -> TextType:
        return self._aggregation_type

    @property
    @abstractmethod
    def text(self) -> Aggregation:
        """The text held so far (not yet a finished piece)."""

    @abstractmethod
    def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        """Add ``text``; yields each piece it finishes (stripped of surrounding spaces)."""

    @abstractmethod
    async def flush(self) -> Aggregation | None:
        """The held text as a last piece (the reply ended), or None when nothing is held."""

    @abstractmethod
    async def handle_interruption(self) -> None:
        """The bot was interrupted: drop the held text."""

    @abstractmethod
    async def reset(self) -> None:
        """Back to the initial state, nothing held."""
