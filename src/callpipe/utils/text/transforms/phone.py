"""Phone numbers read digit by digit, in their groups (Pipecat 1.14's
``expand_phone_numbers``).

A TTS engine reads ``555-123-4567`` as "five hundred fifty-five, one hundred twenty-three..."
or as a subtraction; a caller needs "five five five, one two three, four five six seven".
Numbers are rewritten as their digits separated by spaces, with a comma between the groups
so the engine pauses where a person reading the number would.

Recognised:

- North American numbers: ``555-123-4567``, ``(555) 123-4567``, ``555.123.4567``,
  ``555 123 4567``, ``5551234567``, with an optional country code (``1-800-555-1234``,
  ``+1 555 123 4567``, ``+15551234567``);
- international numbers written with their ``+`` and country code, 8 to 15 digits in all
  (``+44 20 7946 0958``, ``+33 1 23 45 67 89``, ``+4930123456``). A number written without
  separators after its ``+`` is read as one group: where its country code ends is not known.

Numbers without a ``+`` that are not North American in shape (``020 7946 0958``) are left
alone: such digit groups are as likely to be amounts, codes or ranges.
"""

from __future__ import annotations

import re

from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.transforms._spoken import spaced_digits

_SEP = r"[ .\-]"
_PHONE = re.compile(
    # Not inside a word, a longer number, an amount or a decimal.
    r"(?<![\w+$€£¥₹])(?<!\d[.,])"
    r"(?:"
    # North American: [+][1] area exchange line.
    rf"(?P<nanp>(?:(?P<nanp_plus>\+)?(?P<country>1){_SEP}?)?"
    rf"(?:\((?P<area_b>\d{{3}})\)\ ?|(?P<area>\d{{3}}){_SEP}?)"
    rf"(?P<exchange>\d{{3}}){_SEP}?(?P<line>\d{{4}}))"
    # International: + country code, then digit groups (a group may be in brackets).
    rf"|(?P<intl>\+\d{{1,4}}(?:(?:(?:{_SEP}|(?<=\)))\(?\d+\)?)+|\d*))"
    r")"
    r"(?!\d|[.,]\d)"
)
_GROUP = re.compile(r"\d+")


def _spoken_phone(match: re.Match[str]) -> str:
    if match.group("nanp"):
        groups = [match.group("area_b") or match.group("area"), match.group("exchange")]
        groups.append(match.group("line"))
        if match.group("country"):
            groups.insert(0, match.group("country"))
        plus = match.group("nanp_plus") is not None
    else:
        groups = _GROUP.findall(match.group("intl"))
        if not 8 <= sum(len(group) for group in groups) <= 15:
            return match.group(0)
        plus = True
    spoken = ", ".join(spaced_digits(group) for group in groups)
    return f"plus {spoken}" if plus else spoken


async def expand_phone_numbers(text: str, text_type: str | TextType) -> str:
    """Rewrite phone numbers as their digits, grouped (see the module docstring).

    ``"Call 555-123-4567"`` → ``"Call 5 5 5, 1 2 3, 4 5 6 7"``, which a TTS engine reads as
    "five five five, one two three, four five six seven"; ``"+44 20 7946 0958"`` →
    ``"plus 4 4, 2 0, 7 9 4 6, 0 9 5 8"``.

    Pipecat's transform joins all the digits with single spaces and drops the ``+``; callpipe
    keeps a pause between the groups (a caller writing the number down needs them) and says
    "plus" so the caller knows to dial the international prefix. The digits stay digits, so
    word timestamps still line up with the written number. ``text_type`` is not used: the
    transform applies to whatever it is registered for.
    """
    return _PHONE.sub(_spoken_phone, text)
