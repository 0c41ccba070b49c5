"""Numeric dates as said aloud (Pipecat 1.14's ``normalize_dates``).

``2023-05-10`` and ``05/10/2023`` → "May 10th, two thousand and twenty-three". Needs
num2words (the ``text`` extra).
"""

from __future__ import annotations

import re
from datetime import date

from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.transforms._spoken import year

# English names whatever the process locale (strftime("%B") would follow LC_TIME).
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_EDGE_BEFORE = r"(?<![\w\-/.])"
_EDGE_AFTER = r"(?![\w/]|[\-.]\d)"
_ISO = re.compile(rf"{_EDGE_BEFORE}(\d{{4}})-(\d{{2}})-(\d{{2}}){_EDGE_AFTER}")
# Month first; the same separator twice; a two-digit year only with slashes ("3/15/25").
_NUMERIC = re.compile(
    rf"{_EDGE_BEFORE}(\d{{1,2}})(?:/(\d{{1,2}})/(\d{{4}}|\d{{2}})|-(\d{{1,2}})-(\d{{4}})){_EDGE_AFTER}"
)


_SUFFIXES = {1: "st", 2: "nd", 3: "rd"}


def _ordinal_digits(day: int) -> str:
    """``1`` → ``"1st"``, ``12`` → ``"12th"``, ``22`` → ``"22nd"``."""
    suffix = "th" if day % 100 in (11, 12, 13) else _SUFFIXES.get(day % 10, "th")
    return f"{day}{suffix}"


def _spoken(when: date) -> str:
    return f"{_MONTHS[when.month - 1]} {_ordinal_digits(when.day)}, {year(when.year)}"


def _iso(match: re.Match[str]) -> str:
    try:
        return _spoken(date(int(match.group(1)), int(match.group(2)), int(match.group(3))))
    except ValueError:
        return match.group(0)


def _numeric(match: re.Match[str]) -> str:
    first = int(match.group(1))
    second = int(match.group(2) or match.group(4))
    year_text = match.group(3) or match.group(5)
    full_year = int(year_text)
    if len(year_text) == 2:  # POSIX's pivot, as strptime's %y: 69-99 → 1900s, 00-68 → 2000s
        full_year += 1900 if full_year >= 69 else 2000
    for month, day in ((first, second), (second, first)):
        try:
            return _spoken(date(full_year, month, day))
        except ValueError:
            continue
    return match.group(0)


async def normalize_dates(text: str, text_type: str | TextType) -> str:
    """Rewrite numeric dates as said aloud.

    ISO dates (``2023-05-10``) and month-first dates (``05/10/2023``, ``5-10-2023``,
    ``3/15/25``) become "May 10th, two thousand and twenty-three"; the day stays a numeral
    with its suffix ("10th"), which every TTS engine reads as an ordinal. Text that is not a
    real date (``2023-02-30``, ``13/13/2023``) is left alone.

    Beyond Pipecat's transform, for what a caller should hear:

    - a year outside 2000-2099 is read as a year, not a quantity: ``1985`` → "nineteen
      eighty-five" (Pipecat: "one thousand, nine hundred and eighty-five") — dates of birth;
    - a two-digit year with slashes is read (``3/15/25`` → "March 15th, two thousand and
      twenty-five", as Pipecat's documentation shows; its code leaves it): 00-68 are
      2000s, 69-99 1900s;
    - a date whose first number cannot be a month but whose second can (``25/12/2023``) is
      read day first, "December 25th, ...". An ambiguous one (``05/10/2023``) is month first.

    Needs num2words (``pip install 'callpipe[text]'``): without it this raises
    :class:`~callpipe.errors.MissingDependencyError`. ``text_type`` is not used.
    """
    text = _ISO.sub(_iso, text)
    return _NUMERIC.sub(_numeric, text)
