"""Numbers in words (Pipecat 1.14's ``expand_numbers``): ``42`` → "forty-two".

A factory: ``expand_numbers(digit_cutoff=2025)`` returns the transform. Needs num2words (the
``text`` extra).
"""

from __future__ import annotations

import re

from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.transforms._spoken import (
    decimal,
    require_num2words,
    spaced_digits,
)
from callpipe.utils.text.transforms.text_transform import TextTransform

# A whole number (maybe with thousands commas) and its decimals; not part of a word ("MP3",
# "10th"), a dotted version or address ("1.2.3"), a time ("3:30") or a longer number.
_NUMBER = re.compile(
    r"(?<![\w.,])(?<!\d:)(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d+))?"
    r"(?![\w]|[.,:]\d)"
)


def expand_numbers(digit_cutoff: int | None = 2025) -> TextTransform:
    """A transform that rewrites numbers in words.

    Numbers up to ``digit_cutoff`` are read as quantities (``"42"`` → "forty-two"), larger
    ones digit by digit (``"2026"`` → ``"2 0 2 6"``, which an engine reads "two zero two
    six"): above a year or so, a number without commas is usually a code, an account or an
    order number. ``None`` reads every number as a quantity. Decimals are read digit by digit
    after "point", so every written digit is heard: ``"1.50"`` → "one point five zero".

    A number written with thousands commas (``"1,234,567"``) is always a quantity, whatever
    the cutoff: Pipecat would read it digit by digit, which no caller expects of a number
    written that way. Ordinals and words with digits (``"10th"``, ``"MP3"``), dotted numbers
    (``"1.2.3"``) and times (``"3:30pm"``, which engines read well and Pipecat turns into
    "three:30pm") are left alone.

    Run it after the transforms that need the digits (currency, phone numbers, dates...),
    as :class:`VoiceFormatter` does: on a phone number already spaced out by
    :func:`expand_phone_numbers` it says each digit, "five five five, one two three...".

    Needs num2words (``pip install 'callpipe[text]'``): without it this raises
    :class:`~callpipe.errors.MissingDependencyError` when called.

    Example::

        transform = expand_numbers(digit_cutoff=2025)
        await transform("Room 42 has 1234 seats and opens in 2026", "*")
        # "Room forty-two has one thousand two hundred and thirty-four seats and opens in
        #  2 0 2 6"
    """
    require_num2words()

    def _spoken(match: re.Match[str]) -> str:
        whole, fraction = match.group("whole"), match.group("fraction")
        digits = whole.replace(",", "")
        if digit_cutoff is not None and digits == whole and int(digits) > digit_cutoff:
            return spaced_digits(digits) + (f" point {spaced_digits(fraction)}" if fraction else "")
        return decimal(whole, fraction)

    async def _transform(text: str, text_type: str | TextType) -> str:
        return _NUMBER.sub(_spoken, text)

    return _transform
