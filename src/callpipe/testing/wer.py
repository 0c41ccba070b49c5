"""Word error rate for checking what a bot or a speech recogniser said.

Both texts are normalised first (lower case, punctuation dropped, digits spoken as words, so
"4567" and "four five six seven" agree), then compared word by word with the Levenshtein
distance: (substitutions + deletions + insertions) / words in the reference.
"""

from __future__ import annotations

import re

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_WORD = re.compile(r"[a-z0-9']+")


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation; each digit becomes its own word."""
    words: list[str] = []
    for token in _WORD.findall(text.lower().replace("-", " ")):
        token = token.strip("'")
        if token.isdigit():
            words.extend(_DIGITS[int(d)] for d in token)
        elif token:
            words.append(token)
    return words


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, number of reference words)."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1], len(ref)


def word_error_rate(pairs: list[tuple[str, str]]) -> float:
    """Corpus WER over (reference, hypothesis) pairs."""
    errors = words = 0
    for reference, hypothesis in pairs:
        e, n = word_errors(reference, hypothesis)
        errors += e
        words += n
    return errors / words if words else 0.0
