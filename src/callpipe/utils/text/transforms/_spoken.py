"""Number words shared by the voice transforms, from num2words (the ``text`` extra).

num2words is imported on first use, so importing the transforms package stays cheap and works
without the extra; a transform that needs number words raises
:class:`~callpipe.errors.MissingDependencyError` naming the extra when it is missing.

Words are num2words' English ones with its commas taken out: "one thousand two hundred and
thirty-four", not "one thousand, two hundred and thirty-four", whose comma a TTS engine reads
as a pause in the middle of an amount.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from callpipe.errors import MissingDependencyError

EXTRA = "text"
"""The optional extra that installs num2words: ``pip install 'callpipe[text]'``."""

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@cache
def _num2words() -> Callable[..., object]:
    try:
        from num2words import num2words
    except ImportError as exc:
        what = "num2words (number words for TTS text transforms)"
        raise MissingDependencyError(what, EXTRA) from exc
    return num2words  # type: ignore[no-any-return]


def require_num2words() -> None:
    """Raise :class:`~callpipe.errors.MissingDependencyError` now if num2words is missing
    (for constructors, so a bot fails at start rather than while speaking)."""
    _num2words()


def spaced_digits(digits: str) -> str:
    """``"2026"`` → ``"2 0 2 6"``: each digit on its own, which every TTS engine reads one
    at a time."""
    return " ".join(digits)


def cardinal(number: int) -> str:
    """``1234`` → ``"one thousand two hundred and thirty-four"``. A number too large for
    num2words is read digit by digit instead of failing the sentence."""
    try:
        words = str(_num2words()(number, lang="en"))
    except OverflowError:
        return spaced_digits(str(number))
    return words.replace(",", "")


def year(number: int) -> str:
    """A year as said aloud: ``1985`` → "nineteen eighty-five", ``1905`` → "nineteen oh-five",
    and (as Pipecat reads them) ``2023`` → "two thousand and twenty-three"."""
    if 2000 <= number <= 2099:
        return cardinal(number)
    return str(_num2words()(number, lang="en", to="year")).replace(",", "")


def decimal(whole: str, fraction: str | None) -> str:
    """``("3", "05")`` → ``"three point zero five"``: the fraction digit by digit, so every
    written digit is heard (trailing zeros too). ``whole`` may hold thousands commas."""
    words = cardinal(int(whole.replace(",", "")))
    if fraction:
        words += " point " + " ".join(DIGIT_WORDS[int(d)] for d in fraction)
    return words
