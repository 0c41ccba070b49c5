"""Unit abbreviations in words (Pipecat 1.14's ``expand_units``): ``5km`` → "5 kilometers".

The number stays as written (:func:`expand_numbers` may read it afterwards).
"""

from __future__ import annotations

import re

from callpipe.utils.text.base_text_aggregator import TextType

# Abbreviation (lowercase) → (one, many).
_UNITS: dict[str, tuple[str, str]] = {
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "yd": ("yard", "yards"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"),
    "mph": ("mile per hour", "miles per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "kmh": ("kilometer per hour", "kilometers per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kb": ("kilobyte", "kilobytes"),
    "mb": ("megabyte", "megabytes"),
    "gb": ("gigabyte", "gigabytes"),
    "tb": ("terabyte", "terabytes"),
    "hz": ("hertz", "hertz"),
    "khz": ("kilohertz", "kilohertz"),
    "mhz": ("megahertz", "megahertz"),
    "ghz": ("gigahertz", "gigahertz"),
    "kwh": ("kilowatt hour", "kilowatt hours"),
    "°f": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°c": ("degree Celsius", "degrees Celsius"),
    "°": ("degree", "degrees"),
}
# Abbreviations that are also words or other things: expanded only written as shown, right
# after the number ("5m", "2L"; not "1 in 5", "5G", "5M users").
_TIGHT: dict[str, tuple[str, str]] = {
    "m": ("meter", "meters"),
    "g": ("gram", "grams"),
    "in": ("inch", "inches"),
    "l": ("liter", "liters"),
    "L": ("liter", "liters"),
}


def _alternatives(names: list[str]) -> str:
    return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))


_UNIT = re.compile(
    r"(?<![\w.,])(?P<number>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)"
    rf"(?:\s?(?P<unit>(?i:{_alternatives(list(_UNITS))}))|(?P<tight>{_alternatives(list(_TIGHT))}))"
    r"(?![\w/])"
)


def _spoken_unit(match: re.Match[str]) -> str:
    number, unit = match.group("number"), match.group("unit")
    one, many = _UNITS[unit.lower()] if unit else _TIGHT[match.group("tight")]
    # Only a bare "1" is singular: "1.0 kilometers" is read with its decimals, as a plural.
    return f"{number} {one if number == '1' else many}"


async def expand_units(text: str, text_type: str | TextType) -> str:
    """Rewrite unit abbreviations after a number in words.

    ``"Run 5km at 100kph"`` → ``"Run 5 kilometers at 100 kilometers per hour"``; ``"1 km"``
    → ``"1 kilometer"`` (only a bare 1 is singular). Lengths, weights, volumes, speeds, data
    sizes and frequencies, as Pipecat's; callpipe adds ``lbs``, ``km/h``, ``kWh`` and
    temperatures (``72°F`` → "72 degrees Fahrenheit").

    The abbreviations that are also words or mean other things (``m``, ``g``, ``in``,
    ``l``) are expanded only right after the number, so "1 in 5" stays. Unlike Pipecat's,
    they are case-sensitive: ``5G`` (the network) and ``5M`` (five million) are not read as
    grams or meters; ``2L`` is liters. ``text_type`` is not used.
    """
    return _UNIT.sub(_spoken_unit, text)
