"""Sentence splitting for streamed LLM text, so speech can start after the first sentence.

A ``.`` ends a sentence only once the next character shows it is not a decimal point
(``3.5``), and not after a known abbreviation (``Dr.``) or a single initial (``J.``); ``!``,
``?``, ``…`` and CJK full stops end a sentence at once. Very long runs without a full stop are
cut at the last clause boundary so a rambling sentence does not hold speech back.
"""

from __future__ import annotations

import re

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
