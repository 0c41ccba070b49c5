"""One configurable transform bundling the voice transforms (Pipecat 1.14's
``VoiceFormatter``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.transforms._spoken import require_num2words
from callpipe.utils.text.transforms.acronyms import normalize_acronyms as _normalize_acronyms
from callpipe.utils.text.transforms.currency import expand_currency as _expand_currency
from callpipe.utils.text.transforms.dates import normalize_dates as _normalize_dates
from callpipe.utils.text.transforms.email import email_to_speech as _email_to_speech
from callpipe.utils.text.transforms.numbers import expand_numbers as _expand_numbers
from callpipe.utils.text.transforms.percentages import expand_percentages as _expand_percentages
from callpipe.utils.text.transforms.phone import expand_phone_numbers as _expand_phone_numbers
from callpipe.utils.text.transforms.replacements import replace_text
from callpipe.utils.text.transforms.strip_markdown import StripMarkdown
from callpipe.utils.text.transforms.text_transform import TextTransform
from callpipe.utils.text.transforms.units import expand_units as _expand_units


class VoiceFormatter:
    r"""A text transform running the voice transforms chosen by its options, in a fixed order.

    Register it on a TTS service::

        tts = CartesiaTTSService(..., text_transforms=[("*", VoiceFormatter())])

    so "Call **555-123-4567** about your $12.50 bill" is sent as "Call 5 5 5, 1 2 3, 4 5 6 7
    about your twelve dollars and fifty cents bill".

    The order, as Pipecat's: markdown first; then email addresses (before phone numbers,
    which would take a digit-only domain, and acronyms, which would spell an upper-case
    address); phone numbers; dates; currency; percentages; units (before acronyms, which
    would spell "MB"); acronyms; numbers; your ``custom_replacements`` last.

    Options (keyword-only, Pipecat's names and defaults):

    - ``strip_markdown`` (on), with ``strip_urls`` (on): see :class:`StripMarkdown`;
    - ``email_to_speech``, ``expand_phone_numbers``, ``normalize_dates``,
      ``expand_currency``, ``expand_percentages``, ``expand_units``, ``normalize_acronyms``
      (all on): see the transforms of those names;
    - ``expand_numbers`` (off: a bot's numbers are often better left to the engine), with
      ``number_digit_cutoff`` (``None``: every number read as a quantity; see
      :func:`expand_numbers`);
    - ``custom_replacements``: ``(regex, replacement)`` rules, see :func:`replace_text`.

    Dates, currency, percentages and numbers need num2words (``pip install
    'callpipe[text]'``); if one of them is on and num2words is missing, the constructor
    raises :class:`~callpipe.errors.MissingDependencyError`, so the bot fails when it is
    built rather than in a call. A bad ``custom_replacements`` pattern raises
    :exc:`re.error` here too.

    The rules need whole constructs ("$12.50", a phone number), so register it on a TTS
    service in sentence mode (the default): in token mode each streamed chunk is
    transformed on its own and a number split across chunks is not recognised.
    """

    def __init__(
        self,
        *,
        strip_markdown: bool = True,
        strip_urls: bool = True,
        expand_phone_numbers: bool = True,
        normalize_acronyms: bool = True,
        expand_currency: bool = True,
        expand_numbers: bool = False,
        number_digit_cutoff: int | None = None,
        expand_percentages: bool = True,
        expand_units: bool = True,
        email_to_speech: bool = True,
        normalize_dates: bool = True,
        custom_replacements: Sequence[tuple[str | re.Pattern[str], str]] | None = None,
    ) -> None:
        if normalize_dates or expand_currency or expand_percentages or expand_numbers:
            require_num2words()
        steps: list[tuple[bool, TextTransform]] = [
            (email_to_speech, _email_to_speech),
            (expand_phone_numbers, _expand_phone_numbers),
            (normalize_dates, _normalize_dates),
            (expand_currency, _expand_currency),
            (expand_percentages, _expand_percentages),
            (expand_units, _expand_units),
            (normalize_acronyms, _normalize_acronyms),
        ]
        self._transforms: list[TextTransform] = []
        if strip_markdown:
            self._transforms.append(StripMarkdown(strip_urls=strip_urls))
        self._transforms.extend(transform for enabled, transform in steps if enabled)
        if expand_numbers:
            self._transforms.append(_expand_numbers(digit_cutoff=number_digit_cutoff))
        if custom_replacements:
            self._transforms.append(replace_text(custom_replacements))

    async def __call__(self, text: str, text_type: str | TextType) -> str:
        """``text`` after each enabled transform in turn (``text_type`` is passed on)."""
        for transform in self._transforms:
            text = await transform(text, text_type)
        return text
