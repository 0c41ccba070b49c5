"""Words swapped for a TTS service's pronunciation markup (Pipecat 1.14's
``pipecat.utils.text.transforms.pronunciations``).

Usually built by a service, which knows its markup::

    pronounce = CartesiaTTSService.pronunciation_transform_ipa({"Metformin": "mɛtˈfɔɹmɪn"})
    tts = CartesiaTTSService(..., text_transforms=[("*", strip_markdown), ("*", pronounce)])

(see :meth:`callpipe.services.tts_service.TTSService.pronunciation_transform_ipa`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

from callpipe.utils.text.base_text_aggregator import TextType

logger = logging.getLogger(__name__)

PronunciationFormatter = Callable[[str, str], str | None]
"""``(word as written, IPA) -> text to send``, or None when the service cannot say it so."""


class PronunciationTransform:
    """A text transform that puts pronunciation markup in place of chosen words.

    A TTS service recognises it among its ``text_transforms`` and skips it while its model or
    settings cannot read the markup (``supports_pronunciations``), so the words are then spoken
    as written rather than the markup read out or the word dropped.
    """

    def __init__(
        self,
        pattern: re.Pattern[str] | None,
        ipa_by_word: Mapping[str, str],
        format_pronunciation: PronunciationFormatter,
    ) -> None:
        """``pattern`` matches the words (None: there are none); ``ipa_by_word`` has each
        word's IPA under the word in lower case, its spaces single."""
        self._pattern = pattern
        self._ipa = dict(ipa_by_word)
        self._format = format_pronunciation
        self._rendered: dict[str, str] = {}
        """Markup by the word as it was written (its case kept): formatted once each."""

    @property
    def words(self) -> frozenset[str]:
        """The words replaced (lower case)."""
        return frozenset(self._ipa)

    def _markup(self, match: re.Match[str]) -> str:
        written = match.group(0)
        markup = self._rendered.get(written)
        if markup is None:
            ipa = self._ipa[" ".join(written.split()).lower()]
            markup = self._rendered[written] = self._format(written, ipa) or written
        return markup

    async def __call__(self, text: str, text_type: str | TextType) -> str:
        """``text`` with each of the words in markup (``text_type`` is not used)."""
        if self._pattern is None:
            return text
        return self._pattern.sub(self._markup, text)


def pronunciation_transform(
    pronunciations: Mapping[str, str],
    format_pronunciation: PronunciationFormatter,
    *,
    service_name: str = "TTS service",
) -> PronunciationTransform:
    """A :class:`PronunciationTransform` saying each word of ``pronunciations`` (word -> IPA,
    e.g. ``{"Metformin": "mɛtˈfɔɹmɪn"}``) as ``format_pronunciation`` renders it.

    A word matches whole, in any case, and not as part of a longer word or of a hyphenated one
    ("Metformin" is left alone in "Metformins" and "pre-Metformin"; "Metformin's" keeps its
    "'s"); longer words are tried first, so a phrase wins over a word inside it, and the spaces
    of a phrase match any run of whitespace. The formatter gets the word as written, so markup
    that keeps the word keeps its case.

    Every pronunciation is formatted once here: one the service cannot use (the formatter
    returns None) is left out, with one WARNING naming ``service_name`` and the words, and is
    spoken as written, rather than failing during a call.
    """
    ipa_by_word: dict[str, str] = {}
    unusable: list[str] = []
    for word, ipa in pronunciations.items():
        key = " ".join(word.split())
        if not key:
            continue
        if format_pronunciation(key, ipa) is None:
            unusable.append(key)
            ipa_by_word.pop(key.lower(), None)
        else:
            ipa_by_word[key.lower()] = ipa
    if unusable:
        logger.warning(
            "%s cannot use the IPA pronunciations of %s: they are spoken as written",
            service_name,
            ", ".join(unusable),
        )
    pattern = None
    if ipa_by_word:
        longest_first = sorted(ipa_by_word, key=len, reverse=True)
        alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in longest_first)
        pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)
    return PronunciationTransform(pattern, ipa_by_word, format_pronunciation)
