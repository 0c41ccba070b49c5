"""Sentences that never end inside a tag pair (``<spell>A. B. C.</spell>`` stays whole)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from callpipe.utils.string import (
    StartEndTags,
    longest_trailing_partial_match,
    parse_start_end_tags,
)
from callpipe.utils.text.base_text_aggregator import Aggregation, TextType
from callpipe.utils.text.simple_text_aggregator import SimpleTextAggregator


class SkipTagsAggregator(SimpleTextAggregator):
    """A sentence aggregator that ignores sentence ends between a start and an end tag.

    ``tags``: the ``(start, end)`` pairs, e.g. ``[("<spell>", "</spell>")]``. The tags stay in
    the text. In TOKEN mode text is passed on as it comes, except that a tag's content is
    held until the tag closes and text ending in what may be the start of a tag waits for the
    next chunk. A tag that never closes is given out whole by :meth:`flush`.
    """

    def __init__(self, tags: Sequence[StartEndTags], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tags = list(tags)
        self._starts = [start for start, _ in self._tags]  # held back when cut by streaming
        self._open_tag: StartEndTags | None = None
        self._tag_scan = 0

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        if self._aggregation_type is TextType.TOKEN:
            for char in text:
                self._add_char(char)
            if self._open_tag is None and self._text:
                held = longest_trailing_partial_match(self._text, self._starts)
                if len(self._text) > held:
                    out = self._text[: len(self._text) - held]
                    self._text = self._text[len(out) :]
                    self._tag_scan = 0
                    yield Aggregation(text=out, type=TextType.TOKEN)
            return
        for i, char in enumerate(text):
            self._add_char(char)
            # A sentence can only end before a space or at the end of the text so far.
            if self._open_tag is None and (char.isspace() or i == len(text) - 1):
                for sentence in self._take_sentences(self._closed_tags_end()):
                    self._tag_scan = 0
                    yield Aggregation(text=sentence, type=TextType.SENTENCE)

    def _add_char(self, char: str) -> None:
        self._text += char
        self._open_tag, self._tag_scan = parse_start_end_tags(
            self._text, self._tags, self._open_tag, self._tag_scan
        )

    def _closed_tags_end(self) -> int:
        """Where the last closed tag in the held text ends (0: none): nothing before it is cut."""
        ends = [self._text.rfind(end) + len(end) for _, end in self._tags if end in self._text]
        return max(ends, default=0)

    async def flush(self) -> Aggregation | None:
        if self._aggregation_type is TextType.TOKEN:
            text = self._text
            await self.reset()
            return Aggregation(text=text, type=TextType.TOKEN) if text else None
        return await super().flush()

    async def handle_interruption(self) -> None:
        await super().handle_interruption()
        self._open_tag = None
        self._tag_scan = 0

    async def reset(self) -> None:
        await super().reset()
        self._open_tag = None
        self._tag_scan = 0
