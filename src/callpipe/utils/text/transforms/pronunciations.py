"""Words swapped for a TTS service's pronunciation markup (Pipecat 1.14's
``pipecat.utils.text.transforms.pronunciations``).

Usually built by a service, which knows its markup::

    pronounce = CartesiaTTSService.pronunciation_transform_ipa({"Metformin": "mɛtˈfɔɹmɪn"})
    tts = CartesiaTTSService(..., text_transforms=[("*", strip_markdown), ("*", pronounce)])

(see :meth:`callpipe.services.tts_service.TTSService.pronunciation_transform_ipa`).

A provider with word timing may echo the markup it was sent as the words it spoke (one token,
``<<m|ɛ|t|…>>``, or several, an SSML tag split at its spaces). :meth:`PronunciationTransform.
replace_words` tells the service which markup stood for which word as written, and
:class:`PronouncedWords` maps such timed tokens back to that word, so the word timing (and the
context built from it) carries the LLM's words, never the markup.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping

from callpipe.utils.text.base_text_aggregator import TextType

logger = logging.getLogger(__name__)

PronunciationFormatter = Callable[[str, str], str | None]
"""``(word as written, IPA) -> text to send``, or None when the service cannot say it so."""

Replacement = tuple[str, str]
"""``(markup sent, word as written)``: one word a :class:`PronunciationTransform` replaced."""

TimedWord = tuple[str, float]
"""``(word, end_secs)``: a word of a provider's word timing."""


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

    def _markup(self, written: str) -> str:
        markup = self._rendered.get(written)
        if markup is None:
            ipa = self._ipa[" ".join(written.split()).lower()]
            markup = self._rendered[written] = self._format(written, ipa) or written
        return markup

    def replace_words(self, text: str) -> tuple[str, list[Replacement]]:
        """``text`` with each of the words in markup, and ``(markup, word as written)`` for
        each word replaced, in the order of the text (what a service with word timing needs to
        map echoed markup back, see :class:`PronouncedWords`)."""
        if self._pattern is None:
            return text, []
        replaced: list[Replacement] = []

        def replace(match: re.Match[str]) -> str:
            written = match.group(0)
            markup = self._markup(written)
            if markup != written:
                replaced.append((markup, written))
            return markup

        return self._pattern.sub(replace, text), replaced

    async def __call__(self, text: str, text_type: str | TextType) -> str:
        """``text`` with each of the words in markup (``text_type`` is not used)."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self._markup(match.group(0)), text)


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


class PronouncedWords:
    """One reply's word timing mapped back from pronunciation markup to the words as written.

    :meth:`add` takes the replacements of each piece of text sent, in order
    (:meth:`PronunciationTransform.replace_words`); :meth:`restore` the provider's timed words
    as they come. A timed word holding a markup of one word (``<<m|ɛ|t|…>>,``) becomes the word
    as written, keeping what is attached to the markup (``Metformin,``). A markup reported as
    several words (an SSML tag split at its spaces, a phrase's blocks) is held back until its
    last piece, then becomes the word (each word of a phrase), timed by that piece's end. Any
    other word, the word as written included, passes unchanged. Replacements are looked for in
    order: once one is found, those before it (reported as plain words) are not looked for
    again.
    """

    def __init__(self) -> None:
        self._sent: list[tuple[tuple[str, ...], str]] = []
        """``(the markup's space-separated pieces, the word as written)`` of each replacement
        sent, in order."""
        self._next = 0
        """The first of them not found yet."""
        self._held: list[TimedWord] = []
        """Timed words beginning a markup of several pieces, waiting for the rest of it."""

    def add(self, replacements: Iterable[Replacement]) -> None:
        """Replacements in the next piece of text sent (``(markup, word as written)``)."""
        for markup, written in replacements:
            pieces = tuple(markup.split())
            if pieces and written.split():
                self._sent.append((pieces, written))

    def restore(self, words: Iterable[TimedWord]) -> list[TimedWord]:
        """The words to release for the timed ``words`` (each stripped, not empty), in order:
        the word as written for its markup; none yet for the first pieces of a markup."""
        released: list[TimedWord] = []
        for word in words:
            self._held.append(word)
            while self._held:
                found = self._match()
                if found is None:  # not (the start of) markup: as reported
                    released.append(self._held.pop(0))
                    continue
                index, length = found
                if not length:
                    break  # the rest of a markup may follow
                released += self._written(index, self._held[:length], complete=True)
                del self._held[:length]
                self._next = index + 1
        return released

    def flush(self) -> list[TimedWord]:
        """The timing ended: a markup held back whose last pieces never came still stands for
        its word (timed by the last piece that came)."""
        found = self._match() if self._held else None
        held, self._held = self._held, []
        if found is None:
            return held
        self._next = found[0] + 1
        return self._written(found[0], held, complete=False)

    def drop_held(self) -> None:
        """Forget the timed words held back (their audio is not coming)."""
        self._held.clear()

    def restart(self) -> None:
        """The provider times the reply again from its start."""
        self._held.clear()
        self._next = 0

    def _match(self) -> tuple[int, int] | None:
        """The first replacement not found yet that the held words are, or begin:
        ``(index, pieces matched)``, ``(index, 0)`` when its last pieces are still to come;
        None when they begin none."""
        first = self._held[0][0]
        for index in range(self._next, len(self._sent)):
            pieces = self._sent[index][0]
            if len(pieces) == 1:
                if pieces[0] in first:
                    return index, 1
                continue
            last = len(pieces) - 1
            if first.endswith(pieces[0]) and all(
                word == pieces[n] if n < last else word.startswith(pieces[last])
                for n, (word, _) in enumerate(self._held[1 : last + 1], 1)
            ):
                return (index, len(pieces)) if len(self._held) > last else (index, 0)
        return None

    def _written(self, index: int, words: list[TimedWord], *, complete: bool) -> list[TimedWord]:
        """The words as written of replacement ``index``, which ``words`` report, with what was
        attached before the markup's first piece and after its last, timed by their end."""
        pieces, written = self._sent[index]
        first = words[0][0]
        if len(pieces) == 1:
            at = first.find(pieces[0])
            before, after = first[:at], first[at + len(pieces[0]) :]
        else:
            before = first[: len(first) - len(pieces[0])]
            after = words[-1][0][len(pieces[-1]) :] if complete else ""
        spoken = written.split()
        spoken[0] = before + spoken[0]
        spoken[-1] += after
        end = words[-1][1]
        return [(word, end) for word in spoken]
