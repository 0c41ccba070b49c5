"""IPA helpers for TTS pronunciation markup (Pipecat 1.14's ``pipecat.utils.text.phonemes``).

A pronunciation is given once, as IPA (``{"Metformin": "mɛtˈfɔɹmɪn"}``), and each TTS service
renders it in its own markup (see
:func:`callpipe.utils.text.transforms.pronunciations.pronunciation_transform`). The renderers
share three steps, kept here:

- :func:`normalize_ipa` writes the same sounds in one notation (``ʧ`` and ``t͡ʃ`` become
  ``tʃ``, an ASCII ``g`` becomes ``ɡ``, ``'`` becomes ``ˈ``, ``:`` becomes ``ː``, syllable dots
  and surrounding ``/…/`` or ``[…]`` go). It never changes which sound is written, so it is
  safe for any language.
- :func:`ipa_phones` cuts one word of IPA into phones (what Cartesia wants between ``|``).
- :func:`stress_before_vowels` moves each stress mark from the start of its syllable, where
  dictionaries write it, to just before the syllable's vowel (what Deepgram and Cartesia ask
  for).
"""

from __future__ import annotations

import unicodedata

PRIMARY_STRESS = "ˈ"
SECONDARY_STRESS = "ˌ"
STRESS_MARKS = frozenset({PRIMARY_STRESS, SECONDARY_STRESS})
TIE_BAR = "\u0361"
"""Joins two symbols into one phone: ``t͡s`` (an affricate) rather than ``t`` + ``s``."""

# Other spellings of a symbol, in the order they are replaced (ligatures before the ``g``).
_SPELLINGS: tuple[tuple[str, str], ...] = (
    ("\u035c", TIE_BAR),  # the tie bar written below
    ("ʧ", "tʃ"),
    ("ʤ", "dʒ"),
    ("ʦ", "t" + TIE_BAR + "s"),
    ("ʣ", "d" + TIE_BAR + "z"),
    ("t" + TIE_BAR + "ʃ", "tʃ"),  # always one phone in practice: written untied
    ("d" + TIE_BAR + "ʒ", "dʒ"),
    ("g", "ɡ"),
    ("'", PRIMARY_STRESS),
    (":", "ː"),
    (".", ""),  # a syllable break
)

# Pairs read as one phone without a tie bar: the two common affricates and English diphthongs.
_UNTIED_PAIRS = frozenset({"tʃ", "dʒ", "aɪ", "aʊ", "ɔɪ", "oʊ", "eɪ"})

_VOWELS = frozenset("aeiouyæɑɒɔəɚɛɜɝɪʊʌɐɨʉɯɤøœɶɵɘɞᵻ")

# Marks that belong to the phone before them (length, and any combining diacritic).
_LENGTH_MARKS = frozenset("ːˑ")


def normalize_ipa(ipa: str) -> str:
    """``ipa`` in one notation, the sounds unchanged (see the module docstring).

    ``normalize_ipa("/ˈʧɪ.kən/")`` is ``"ˈtʃɪkən"``; words stay apart by one space.
    """
    text = unicodedata.normalize("NFC", ipa).strip()
    if len(text) >= 2 and text[0] + text[-1] in ("//", "[]"):
        text = text[1:-1]
    for spelling, symbol in _SPELLINGS:
        text = text.replace(spelling, symbol)
    return " ".join(text.split())


def _attaches(char: str) -> bool:
    """Whether ``char`` modifies the phone before it rather than starting one."""
    return char in _LENGTH_MARKS or unicodedata.combining(char) != 0


def ipa_phones(ipa: str) -> list[str]:
    """The phones of one IPA word in order, stress marks as phones of their own.

    A tied pair (``t͡s``) and the untied pairs ``tʃ``, ``dʒ``, ``aɪ``, ``aʊ``, ``ɔɪ``, ``oʊ``,
    ``eɪ`` are one phone each (a tie bar is dropped); length marks and diacritics stay on their
    phone. ``ipa_phones("mɛtˈfɔɹmɪn")`` is ``["m", "ɛ", "t", "ˈ", "f", "ɔ", "ɹ", "m", "ɪ", "n"]``.
    """
    text = normalize_ipa(ipa).replace(" ", "")
    phones: list[str] = []
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char in STRESS_MARKS:
            phones.append(char)
            i += 1
            continue
        if i + 2 < end and text[i + 1] == TIE_BAR:
            phone, i = char + text[i + 2], i + 3
        elif text[i : i + 2] in _UNTIED_PAIRS:
            phone, i = text[i : i + 2], i + 2
        else:
            phone, i = char, i + 1
        while i < end and _attaches(text[i]):
            phone += text[i]
            i += 1
        if all(_attaches(c) for c in phone) and phones and phones[-1] not in STRESS_MARKS:
            phones[-1] += phone  # a stray mark: it belongs to the phone before
        else:
            phones.append(phone)
    return phones


def is_ipa_vowel(phone: str) -> bool:
    """Whether ``phone`` (one of :func:`ipa_phones`) is a vowel."""
    return bool(phone) and phone[0] in _VOWELS


def stress_before_vowels(phones: list[str]) -> list[str]:
    """``phones`` with each stress mark moved to just before the next vowel (one with no vowel
    after it is dropped): ``mɛtˈfɔɹmɪn`` becomes ``mɛtfˈɔɹmɪn``."""
    moved: list[str] = []
    stress = ""
    for phone in phones:
        if phone in STRESS_MARKS:
            stress = phone
            continue
        if stress and is_ipa_vowel(phone):
            moved.append(stress)
            stress = ""
        moved.append(phone)
    return moved
