"""Sentences plus delimited blocks (``<voice>…</voice>``, ``<spell>…</spell>``, code fences)
that are removed, kept, or given out as pieces of their own."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.utils.string import longest_trailing_partial_match
from callpipe.utils.text.base_text_aggregator import Aggregation, TextType
from callpipe.utils.text.simple_text_aggregator import SimpleTextAggregator

logger = logging.getLogger(__name__)


class MatchAction(Enum):
    """What happens to a block once its end delimiter arrives.

    ``REMOVE``: the block and its delimiters leave the text (sentences go on around it).
    ``KEEP``: the block stays in the text, delimiters included; only its handler is told.
    ``AGGREGATE``: the text before the block is given out at once, then the block's content
    as one piece of the pattern's type (never cut into sentences).
    """

    REMOVE = "remove"
    KEEP = "keep"
    AGGREGATE = "aggregate"


class PatternMatch(Aggregation):
    """A finished piece; for a block, ``text`` is its content and ``full_match`` the block with
    its delimiters (for a sentence both are the sentence)."""

    def __init__(self, content: str, type: str, full_match: str) -> None:
        super().__init__(text=content, type=type)
        self.full_match = full_match

    def __str__(self) -> str:
        return f"PatternMatch({self.type}: {self.text!r}, full_match={self.full_match!r})"


PatternHandler = Callable[[PatternMatch], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Pattern:
    type: str
    start: str
    end: str
    action: MatchAction


_RESERVED = frozenset({TextType.SENTENCE, TextType.WORD, TextType.TOKEN})


class PatternPairAggregator(SimpleTextAggregator):
    """Sentences, with the blocks between registered delimiter pairs handled apart.

    Register pairs with :meth:`add_pattern` and, to be told of each finished block, a handler
    with :meth:`on_pattern_match` (both return the aggregator, so calls chain). While a block
    is open no sentence is given out. At :meth:`flush`, an unclosed ``REMOVE`` or ``AGGREGATE``
    block (and a trailing part of its start delimiter) is dropped; an unclosed ``KEEP`` block is
    given out as text.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._patterns: dict[str, _Pattern] = {}
        self._handlers: dict[str, PatternHandler] = {}
        self._open: _Pattern | None = None
        self._open_at = 0

    def add_pattern(
        self,
        type: str,
        start_pattern: str,
        end_pattern: str,
        action: MatchAction = MatchAction.REMOVE,
    ) -> PatternPairAggregator:
        if type in _RESERVED:
            raise ConfigurationError(f"PatternPairAggregator: the type {type!r} is reserved")
        if not start_pattern or not end_pattern:
            raise ConfigurationError("PatternPairAggregator: empty start or end pattern")
        self._patterns[type] = _Pattern(type, start_pattern, end_pattern, action)
        return self

    def on_pattern_match(self, type: str, handler: PatternHandler) -> PatternPairAggregator:
        self._handlers[type] = handler
        return self

    @property
    def text(self) -> Aggregation:
        kind = self._open.type if self._open is not None else TextType.SENTENCE
        return Aggregation(text=self._text.strip(), type=kind)

    def _piece_type(self) -> str:
        return TextType.TOKEN if self._aggregation_type is TextType.TOKEN else TextType.SENTENCE

    async def aggregate(self, text: str) -> AsyncIterator[PatternMatch]:
        last = len(text) - 1
        for i, char in enumerate(text):
            self._text += char
            if self._open is None:
                started = self._started_pattern()
                if started is None:
                    if self._aggregation_type is not TextType.TOKEN and (
                        char.isspace() or i == last
                    ):
                        for sentence in self._take_sentences(self._kept_end()):
                            yield PatternMatch(sentence, TextType.SENTENCE, sentence)
                    continue
                self._open = started
                self._open_at = len(self._text) - len(started.start)
                if started.action is MatchAction.AGGREGATE and self._open_at > 0:
                    before = self._text[: self._open_at]
                    self._text = self._text[self._open_at :]
                    self._open_at = 0
                    if before.strip():
                        yield PatternMatch(before.strip(), self._piece_type(), before)
                continue
            closed, piece = await self._close_block(self._open)
            if closed:
                self._open = None
                if piece is not None:
                    yield piece
        if self._aggregation_type is TextType.TOKEN and self._open is None and self._text:
            held = longest_trailing_partial_match(
                self._text, [p.start for p in self._patterns.values()]
            )
            if len(self._text) > held:
                out = self._text[: len(self._text) - held]
                self._text = self._text[len(out) :]
                yield PatternMatch(out, TextType.TOKEN, out)

    def _started_pattern(self) -> _Pattern | None:
        for pattern in self._patterns.values():
            if self._text.endswith(pattern.start):
                return pattern
        return None

    async def _close_block(self, pattern: _Pattern) -> tuple[bool, PatternMatch | None]:
        """If the open block just closed, act on it: (closed, the piece to give out if any)."""
        content_at = self._open_at + len(pattern.start)
        if not self._text.endswith(pattern.end) or len(self._text) - len(pattern.end) < content_at:
            return False, None
        full = self._text[self._open_at :]
        match = PatternMatch(self._text[content_at : -len(pattern.end)].strip(), pattern.type, full)
        handler = self._handlers.get(pattern.type)
        if handler is not None:
            try:
                await handler(match)
            except Exception:
                logger.exception("PatternPairAggregator: the %r handler failed", pattern.type)
        if pattern.action is MatchAction.KEEP:
            return True, None
        self._text = self._text[: self._open_at]
        return True, match if pattern.action is MatchAction.AGGREGATE else None

    def _kept_end(self) -> int:
        """Where the last kept block in the held text ends (0: none): nothing before it is cut."""
        ends = [
            self._text.rfind(p.end) + len(p.end)
            for p in self._patterns.values()
            if p.action is MatchAction.KEEP and p.end in self._text
        ]
        return max(ends, default=0)

    async def flush(self) -> Aggregation | None:
        text = self._text
        if self._open is not None and self._open.action is not MatchAction.KEEP:
            text = text[: self._open_at]
        held = longest_trailing_partial_match(
            text, [p.start for p in self._patterns.values() if p.action is not MatchAction.KEEP]
        )
        text = text[: len(text) - held]
        await self.reset()
        if not text.strip():
            return None
        return PatternMatch(text.strip(), self._piece_type(), text)

    async def handle_interruption(self) -> None:
        await super().handle_interruption()
        self._open = None
        self._open_at = 0

    async def reset(self) -> None:
        await super().reset()
        self._open = None
        self._open_at = 0
