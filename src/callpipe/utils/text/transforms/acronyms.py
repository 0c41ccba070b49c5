"""Acronyms spelled out (Pipecat 1.14's ``normalize_acronyms``): ``API`` → ``A P I``."""

from __future__ import annotations

import re

from callpipe.utils.text.base_text_aggregator import TextType

# Two or more capitals making a whole word: not "iPhone", "McDonald", "MP3" or "APIs".
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b")
# Acronyms people say as words; spelled out, a caller would hear "enter your P I N".
_SPOKEN_AS_WORDS = frozenset(
    {"PIN", "SIM", "ZIP", "NASA", "NATO", "COVID", "LASER", "RADAR", "SCUBA", "GIF", "JPEG"}
    | {"RAM", "ROM", "FIFA", "UNICEF", "UNESCO", "OPEC", "AWOL", "SWAT"}
)
# Roman numerals of I, V and X ("World War II", "Henry VIII"): engines read them as numbers.
_ROMAN = re.compile(r"(?:X{0,3})(?:IX|IV|V?I{0,3})")


def _spelled(match: re.Match[str]) -> str:
    word = match.group(0)
    if word in _SPOKEN_AS_WORDS or _ROMAN.fullmatch(word):
        return word
    return " ".join(word)


async def normalize_acronyms(text: str, text_type: str | TextType) -> str:
    """Put spaces between the letters of all-capital words, so they are spelled out.

    ``"Use the API or HTTP endpoint"`` → ``"Use the A P I or H T T P endpoint"``. Only the
    spacing changes, never the letters. Words with lowercase letters or digits (``iPhone``,
    ``MP3``, ``APIs``) are left alone.

    Unlike Pipecat's, two kinds of capital words are kept whole: a few acronyms said as words
    ("PIN", "SIM", "ZIP", "NASA", "COVID", "JPEG", ...), which a caller would not recognise
    spelled out ("enter your P I N"), and Roman numerals of I, V and X ("World War II"),
    which would be heard as "I I". A word in capitals for emphasis ("VERY") is still
    spelled: it cannot be told from an acronym. ``text_type`` is not used.
    """
    return _ACRONYM.sub(_spelled, text)
