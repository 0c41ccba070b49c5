"""Sentence splitting for streamed LLM text, so speech can start after the first sentence.

A ``.`` ends a sentence only once the next character shows it is not a decimal point
(``3.5``), and not after a known abbreviation (``Dr.``) or a single initial (``J.``); ``!``,
``?``, ``…`` and CJK full stops end a sentence at once. Very long runs without a full stop are
cut at the last clause boundary so a rambling sentence does not hold speech back.

Pipecat's public helpers live here too: :func:`match_endofsentence` (on the same rules),
:func:`replace_match`, :func:`parse_start_end_tags` and :func:`longest_trailing_partial_match`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc",
        "ltd", "co", "approx", "dept", "fig", "mt", "no", "vol", "jan", "feb", "mar", "apr",
        "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "a.m", "p.m", "u.s",
    }
)  # fmt: skip

_END = re.compile(r"([.!?…]+)[\"'”’)\]]*(?=\s|$)|[。！？]+")
_CLAUSE = re.compile(r"[,;:—–]\s")
_WORD_BEFORE = re.compile(r"(\S+)$")


def _ends_sentence(text: str, match: re.Match[str], at_end: bool) -> bool:
    if match.group(1) is None:  # CJK full stop
        return True
    if at_end and set(match.group(1)) == {"."}:
        return False  # wait: "3." may become "3.5"
    if set(match.group(1)) == {"."}:
        before = _WORD_BEFORE.search(text[: match.start()])
        word = before.group(1).lower().lstrip("(\"'") if before else ""
        if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False
    return True


def match_endofsentence(text: str, *, language: str | None = None) -> int:
    """Length of the first complete sentence at the start of ``text`` (0: none yet).

    The count includes any leading whitespace, so ``text[:n]`` is the sentence and ``text[n:]``
    the rest. Unlike :func:`split_sentences`, a ``.`` at the very end counts as a full stop
    (``"It costs 3."`` is complete): the caller has no more text to wait for. ``language`` is
    accepted for Pipecat compatibility; the rules are the same for every language.
    """
    for match in _END.finditer(text):
        if _ends_sentence(text, match, at_end=False):
            return match.end()
    return 0


def split_sentences(buffer: str) -> tuple[list[str], str]:
    """Complete sentences at the start of ``buffer`` and the incomplete rest."""
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(buffer):
        if not _ends_sentence(buffer, match, at_end=match.end() == len(buffer)):
            continue
        sentence = buffer[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    return sentences, buffer[start:]


class SentenceAggregator:
    """Feed streamed text with :meth:`push`; get whole sentences back as soon as they end."""

    def __init__(self, max_chars: int = 250) -> None:
        self._buffer = ""
        self._max_chars = max_chars

    @property
    def text(self) -> str:
        return self._buffer

    def push(self, text: str) -> list[str]:
        self._buffer += text
        sentences, self._buffer = split_sentences(self._buffer)
        if not sentences and len(self._buffer) > self._max_chars:
            clauses = list(_CLAUSE.finditer(self._buffer))
            end = clauses[-1].end() if clauses else self._buffer.rfind(" ") + 1
            if end > 0:
                head, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
                if head:
                    sentences.append(head)
        return sentences

    def flush(self) -> str | None:
        text, self._buffer = self._buffer.strip(), ""
        return text or None

    def reset(self) -> None:
        self._buffer = ""


StartEndTags = tuple[str, str]


def replace_match(text: str, match: re.Match[str], old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new`` only inside the span ``match`` covers."""
    start, end = match.span()
    return text[:start] + text[start:end].replace(old, new) + text[end:]


def parse_start_end_tags(
    text: str,
    tags: Sequence[StartEndTags],
    current_tag: StartEndTags | None,
    current_tag_index: int,
) -> tuple[StartEndTags | None, int]:
    """Track whether streamed ``text`` is inside a ``(start, end)`` tag pair.

    Call it again as ``text`` grows, passing back what it returned: the open pair (None when
    outside every pair) and the index from which to look next. Inside a pair, only that pair's
    end tag is looked for. Outside, the first pair present in the unread part decides: more
    start tags than end tags opens it; as many closes it.
    """
    rest = text[current_tag_index:]
    if current_tag is not None:
        if current_tag[1] in rest:
            return None, len(text)
        return current_tag, current_tag_index
    for start_tag, end_tag in tags:
        opened, closed = rest.count(start_tag), rest.count(end_tag)
        if opened == 0 and closed == 0:
            continue
        if opened > closed:
            return (start_tag, end_tag), len(text)
        if opened == closed:
            return None, len(text)
    return None, current_tag_index


def longest_trailing_partial_match(text: str, candidates: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that begins one of ``candidates`` but is shorter
    than it (0: none): a tag cut in two by streaming, to hold back until the next chunk."""
    longest = 0
    for candidate in candidates:
        for length in range(min(len(text), len(candidate) - 1), longest, -1):
            if text.endswith(candidate[:length]):
                longest = length
                break
    return longest
