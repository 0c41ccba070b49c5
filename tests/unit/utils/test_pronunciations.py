"""``pronunciation_transform``: which words it replaces, what it hands the formatter, the
pronunciations it cannot use; and the IPA helpers the providers' formatters share."""

from __future__ import annotations

import logging

import pytest

from callpipe.utils.text.phonemes import (
    ipa_phones,
    is_ipa_vowel,
    normalize_ipa,
    stress_before_vowels,
)
from callpipe.utils.text.transforms import PronunciationTransform, pronunciation_transform

IPA = {"Metformin": "mɛtˈfɔɹmɪn"}


def tag(word: str, ipa: str) -> str | None:
    """A formatter keeping the word, so a test sees which spelling it was given."""
    return f"[{word}={ipa}]"


async def run(transform: PronunciationTransform, text: str) -> str:
    return await transform(text, "sentence")


async def test_a_word_is_replaced_whole_in_any_case_as_written() -> None:
    transform = pronunciation_transform(IPA, tag)
    text = "Take metformin. METFORMIN daily; Metformin, with food."
    assert await run(transform, text) == (
        "Take [metformin=mɛtˈfɔɹmɪn]. [METFORMIN=mɛtˈfɔɹmɪn] daily; "
        "[Metformin=mɛtˈfɔɹmɪn], with food."
    )


async def test_never_inside_a_longer_or_hyphenated_word() -> None:
    transform = pronunciation_transform(IPA, tag)
    text = "Metformins, premetformin, Metformin-based, pre-Metformin, Metformin_x, Metformin2"
    assert await run(transform, text) == text
    # Punctuation around it and a possessive are not part of the word.
    assert await run(transform, "(Metformin's) 'Metformin'") == (
        "([Metformin=mɛtˈfɔɹmɪn]'s) '[Metformin=mɛtˈfɔɹmɪn]'"
    )


async def test_the_longest_match_wins_and_a_phrase_spans_any_whitespace() -> None:
    transform = pronunciation_transform({"New York": "nu jɔɹk", "York": "jɔːk"}, tag)
    assert await run(transform, "New York, new\nyork and York.") == (
        "[New York=nu jɔɹk], [new\nyork=nu jɔɹk] and [York=jɔːk]."
    )
    # The order of the mapping does not matter: longest first either way.
    transform = pronunciation_transform({"York": "jɔːk", "New York": "nu jɔɹk"}, tag)
    assert await run(transform, "New York") == "[New York=nu jɔɹk]"


async def test_regex_characters_in_a_word_are_literal() -> None:
    transform = pronunciation_transform({"C++": "siː plʌs plʌs", "a.b": "eɪ biː"}, tag)
    assert await run(transform, "C++ or axb or a.b") == (
        "[C++=siː plʌs plʌs] or axb or [a.b=eɪ biː]"
    )


async def test_unusable_pronunciations_are_warned_once_and_spoken_as_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def single_word(word: str, ipa: str) -> str | None:
        calls.append(word)
        return None if " " in ipa else f"/{ipa}/"

    with caplog.at_level(logging.WARNING):
        transform = pronunciation_transform(
            {"Crete": "kriːt", "Dr Who": "dɑktɚ hu", "Ymir": "ˈiː mɪr", "  ": "x"},
            single_word,
            service_name="SomeTTS",
        )
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "SomeTTS" in warnings[0] and "Dr Who, Ymir" in warnings[0]
    assert "Crete" not in warnings[0]
    assert transform.words == frozenset({"crete"})
    caplog.clear()
    calls.clear()
    text = "Dr Who and Ymir fly to Crete. Crete!"
    assert await run(transform, text) == "Dr Who and Ymir fly to /kriːt/. /kriːt/!"
    assert calls == ["Crete"]  # formatted once per spelling, not per occurrence
    assert not caplog.records  # nothing more is logged while speaking


async def test_no_usable_pronunciation_leaves_the_text_alone() -> None:
    transform = pronunciation_transform(IPA, lambda word, ipa: None)
    assert await run(transform, "Metformin twice.") == "Metformin twice."
    assert await run(pronunciation_transform({}, tag), "Metformin") == "Metformin"


def test_normalize_ipa_unifies_the_notation_only() -> None:
    assert normalize_ipa(" /ˈʧɪ.kən/ ") == "ˈtʃɪkən"
    assert normalize_ipa("[d͡ʒæm]") == "dʒæm"
    assert normalize_ipa("'gɑ:  ʦɛ") == "ˈɡɑː t͡sɛ"


def test_ipa_phones_keeps_tied_pairs_diphthongs_and_marks_together() -> None:
    assert ipa_phones("mɛtˈfɔɹmɪn") == ["m", "ɛ", "t", "ˈ", "f", "ɔ", "ɹ", "m", "ɪ", "n"]
    assert ipa_phones("ˈtʃaɪt͡sɑ̃ː") == ["ˈ", "tʃ", "aɪ", "ts", "ɑ̃ː"]
    assert ipa_phones("ˈɡoʊ") == ["ˈ", "ɡ", "oʊ"]


def test_stress_moves_to_its_vowel() -> None:
    phones = ipa_phones("mɛtˈfɔɹmɪnˌ")
    assert stress_before_vowels(phones) == ["m", "ɛ", "t", "f", "ˈ", "ɔ", "ɹ", "m", "ɪ", "n"]
    assert stress_before_vowels(ipa_phones("ˈstɹiːm")) == ["s", "t", "ɹ", "ˈ", "iː", "m"]
    assert is_ipa_vowel("aɪ") and not is_ipa_vowel("tʃ") and not is_ipa_vowel("")
