"""Money amounts in words (Pipecat 1.14's ``expand_currency``).

``$12.50`` → "twelve dollars and fifty cents". Amounts follow one of ``$ € £ ¥ ₹``, with or
without thousands commas and cents. Needs num2words (the ``text`` extra).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.transforms._spoken import cardinal, decimal


class _Currency(NamedTuple):
    one: str
    many: str
    minor_one: str | None  # None: no minor unit is spoken (yen)
    minor_many: str | None


_CURRENCIES = {
    "$": _Currency("dollar", "dollars", "cent", "cents"),
    "€": _Currency("euro", "euros", "cent", "cents"),
    "£": _Currency("pound", "pounds", "penny", "pence"),
    "¥": _Currency("yen", "yen", None, None),
    "₹": _Currency("rupee", "rupees", "paisa", "paise"),
}
_SCALES = {"k": "thousand", "m": "million", "mn": "million", "b": "billion", "bn": "billion"}

_AMOUNT = re.compile(
    r"(?P<symbol>[$€£¥₹])\s?"
    r"(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d+))?"
    # "$1.5 million", "$2M", "£3bn": the scale is said before the currency.
    r"(?:\s?(?P<scale>(?i:thousand|million|billion|trillion))|(?P<suffix>[kKmMbB]|bn|mn))?"
    r"(?![\w]|[.,]\d)"
)
_CENT = Decimal("0.01")


def _unit(count: int, one: str, many: str) -> str:
    return f"{cardinal(count)} {one if count == 1 else many}"


def _spoken_amount(match: re.Match[str]) -> str:
    currency = _CURRENCIES[match.group("symbol")]
    whole_text, fraction = match.group("whole"), match.group("fraction")
    scale = match.group("scale") or match.group("suffix")
    if scale:
        scale = _SCALES.get(scale.lower(), scale.lower())
        return f"{decimal(whole_text, fraction)} {scale} {currency.many}"
    amount = Decimal(whole_text.replace(",", "") + ("." + fraction if fraction else ""))
    if currency.minor_one is None or currency.minor_many is None:
        if fraction and amount != amount.to_integral_value():
            return f"{decimal(whole_text, fraction)} {currency.many}"
        return _unit(int(amount), currency.one, currency.many)
    amount = amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    whole, cents = int(amount), int((amount % 1) * 100)
    if cents == 0:
        return _unit(whole, currency.one, currency.many)
    minor = _unit(cents, currency.minor_one, currency.minor_many)
    if whole == 0:
        return minor
    return f"{_unit(whole, currency.one, currency.many)} and {minor}"


async def expand_currency(text: str, text_type: str | TextType) -> str:
    """Rewrite money amounts in words.

    ``"Your balance is $42.50"`` → ``"Your balance is forty-two dollars and fifty cents"``;
    ``"$1,200"`` → "one thousand two hundred dollars"; ``"£1.01"`` → "one pound and one
    penny"; ``"¥500"`` → "five hundred yen".

    Where Pipecat's reading would puzzle a caller, callpipe says what a person would:

    - less than one unit is only the cents: ``$0.99`` → "ninety-nine cents" (Pipecat: "zero
      dollars and ninety-nine cents");
    - cents are rounded, not cut: ``$9.999`` → "ten dollars" (Pipecat: "nine dollars and
      ninety-nine cents");
    - an amount with a scale keeps it: ``$1.5 million`` / ``$1.5M`` → "one point five million
      dollars" (Pipecat: "one dollar and fifty cents million" / "...M").

    Other currency notations (``USD 20``, ``20 €``, ``US$5``) are left as written. Needs
    num2words (``pip install 'callpipe[text]'``): without it this raises
    :class:`~callpipe.errors.MissingDependencyError`. ``text_type`` is not used.
    """
    return _AMOUNT.sub(_spoken_amount, text)
