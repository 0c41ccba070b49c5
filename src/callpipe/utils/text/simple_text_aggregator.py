"""Sentence by sentence: the default aggregator of ``LLMTextProcessor``.

Sentence ends follow :mod:`callpipe.utils.string` (the same rules the TTS services use), so a
``.`` at the end of the text so far waits for the next chunk (``3.`` may become ``3.5``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from callpipe.utils.string import split_sentences
from callpipe.utils.text.base_text_aggregator import Aggregation, BaseTextAggregator, TextType


class SimpleTextAggregator(BaseTextAggregator):
    """Holds text until a sentence ends (``TextType.SENTENCE``) or passes each chunk straight
    on (``aggregation_type=TextType.TOKEN``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._text = ""

    @property
    def text(self) -> Aggregation:
        return Aggregation(text=self._text.strip(" "), type=TextType.SENTENCE)

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        if self._aggregation_type is TextType.TOKEN:
            if text:
                yield Aggregation(text=text, type=TextType.TOKEN)
            return
        self._text += text
        for sentence in self._take_sentences():
            yield Aggregation(text=sentence, type=TextType.SENTENCE)

    def _take_sentences(self, protected: int = 0) -> list[str]:
        """Take the complete sentences from the start of the held text. The first
        ``protected`` characters are never cut (a closed tag); they open the first sentence."""
        head, tail = self._text[:protected], self._text[protected:]
        sentences, rest = split_sentences(tail)
        if not sentences:
            return []
        self._text = rest
        if head:
            # split_sentences strips each sentence; rebuild the first with what preceded it.
            first_end = len(tail) - len(tail.lstrip()) + len(sentences[0])
            sentences[0] = (head + tail[:first_end]).strip()
        return sentences

    async def flush(self) -> Aggregation | None:
        if self._aggregation_type is TextType.TOKEN:
            return None
        text = self._text.strip()
        await self.reset()
        return Aggregation(text=text, type=TextType.SENTENCE) if text else None

    async def handle_interruption(self) -> None:
        self._text = ""

    async def reset(self) -> None:
        self._text = ""
