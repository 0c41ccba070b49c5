"""Percentages in words (Pipecat 1.14's ``expand_percentages``): ``50%`` → "fifty percent".

Needs num2words (the ``text`` extra).
"""

from __future__ import annotations

import re

from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.transforms._spoken import decimal


def _number(name: str) -> str:
    return rf"(?P<{name}>\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.(?P<{name}_fraction>\d+))?"


_PERCENT = re.compile(
    # A sign only where it cannot be a hyphen or a range ("down -2%", "+5%").
    rf"(?:(?<![^\s(])(?P<sign>[-+−]))?(?<![\w.,])"
    rf"(?:{_number('low')}\s?%?\s?(?:-|–|to)\s?)?"  # a range's low end: "3-5%", "3%-5%"
    rf"{_number('value')}\s?%"
)
_SIGNS = {"-": "minus ", "−": "minus ", "+": "plus "}


def _spoken_percent(match: re.Match[str]) -> str:
    sign = _SIGNS[match.group("sign")] if match.group("sign") else ""
    spoken = decimal(match.group("value"), match.group("value_fraction")) + " percent"
    if match.group("low"):
        spoken = f"{decimal(match.group('low'), match.group('low_fraction'))} to {spoken}"
    return sign + spoken


async def expand_percentages(text: str, text_type: str | TextType) -> str:
    """Rewrite percentages in words.

    ``"50% off today"`` → ``"fifty percent off today"``; ``"12.5%"`` → "twelve point five
    percent" (the decimals are read digit by digit, so ``2.50%`` keeps its zero, as
    :func:`expand_numbers` reads decimals).

    Beyond Pipecat's transform: a range is read as one (``3-5%`` and ``3%-5%`` → "three to
    five percent"; Pipecat leaves "3-five percent"), numbers may have thousands commas, and a
    sign standing before the number is said (``-2%`` → "minus two percent").

    Needs num2words (``pip install 'callpipe[text]'``): without it this raises
    :class:`~callpipe.errors.MissingDependencyError`. ``text_type`` is not used.
    """
    return _PERCENT.sub(_spoken_percent, text)
