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
from callpipe.utils.text.transforms.pronunciations import (
    PronouncedWords,
    PronunciationTransform,
    pronunciation_transform,
)

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


# ---------------------------------------------------------------------- word timing mapped back

BLOCK = "<<m|ɛ|t|f|ˈ|ɔ|ɹ|m|ɪ|n>>"  # one word of markup (Cartesia's)
TAG = '<phoneme alphabet="ipa" ph="mɛtˈfɔɹmɪn">Metformin</phoneme>'  # three (an SSML tag)
TAG_PIECES = TAG.split()


def sent(*replacements: tuple[str, str]) -> PronouncedWords:
    words = PronouncedWords()
    words.add(replacements)
    return words


def test_replace_words_says_which_markup_stood_for_which_spelling() -> None:
    transform = pronunciation_transform(IPA, tag)
    text, replaced = transform.replace_words("metformin, then METFORMIN. Metformins no.")
    assert text == "[metformin=mɛtˈfɔɹmɪn], then [METFORMIN=mɛtˈfɔɹmɪn]. Metformins no."
    assert replaced == [
        ("[metformin=mɛtˈfɔɹmɪn]", "metformin"),
        ("[METFORMIN=mɛtˈfɔɹmɪn]", "METFORMIN"),
    ]
    assert pronunciation_transform({}, tag).replace_words("Metformin") == ("Metformin", [])


def test_one_word_of_markup_becomes_the_word_keeping_what_is_attached() -> None:
    words = sent((BLOCK, "Metformin"), (BLOCK, "METFORMIN"), ("/kriːt/", "Crete"))
    timed = [("Take", 0.1), (f"({BLOCK}),", 0.4), (f"{BLOCK}!", 0.6), ("/kriːt/.", 0.8)]
    assert words.restore(timed) == [
        ("Take", 0.1),
        ("(Metformin),", 0.4),
        ("METFORMIN!", 0.6),  # each occurrence its own spelling, in order
        ("Crete.", 0.8),
    ]


def test_markup_of_several_words_is_held_until_its_last_piece() -> None:
    words = sent((TAG, "Metformin"))
    assert words.restore([("Take", 0.1), (f'"{TAG_PIECES[0]}', 0.2)]) == [("Take", 0.1)]
    assert words.restore([(TAG_PIECES[1], 0.3)]) == []
    # Timed by the end of the last piece; what was attached on either side stays.
    assert words.restore([(TAG_PIECES[2] + '",', 0.5), ("daily.", 0.6)]) == [
        ('"Metformin",', 0.5),
        ("daily.", 0.6),
    ]


def test_a_phrase_gives_each_of_its_words_the_end_of_the_markup() -> None:
    markup = "<<w|ɪ|n>> <<v|æ|n>>"
    words = sent((markup, "Nguyen\nVan"))
    assert words.restore([("Mr", 0.1), ("<<w|ɪ|n>>", 0.3), ("<<v|æ|n>>.", 0.5)]) == [
        ("Mr", 0.1),
        ("Nguyen", 0.5),
        ("Van.", 0.5),
    ]


def test_words_reported_as_written_pass_and_later_markup_is_still_found() -> None:
    other = '<phoneme alphabet="ipa" ph="kriːt">Crete</phoneme>'
    words = sent((TAG, "Metformin"), (other, "Crete"), (TAG, "Metformin"))
    # The first tag was reported as its plain word: the next tag is the second replacement,
    # although its first pieces are those of the first one too.
    timed = [
        ("Metformin", 0.1),
        ("to", 0.2),
        *[(w, 0.3 + i / 10) for i, w in enumerate(other.split())],
    ]
    assert words.restore(timed) == [("Metformin", 0.1), ("to", 0.2), ("Crete", 0.5)]
    assert words.restore([(w, 0.9) for w in TAG_PIECES]) == [("Metformin", 0.9)]
    # Nothing left to look for: markup-like words now pass as reported.
    assert words.restore([(BLOCK, 1.0), (TAG_PIECES[0], 1.1)]) == [
        (BLOCK, 1.0),
        (TAG_PIECES[0], 1.1),
    ]
    assert words.flush() == []


def test_pieces_that_do_not_finish_a_markup_are_released_as_reported() -> None:
    words = sent((TAG, "Metformin"))
    timed = [(TAG_PIECES[0], 0.1), (TAG_PIECES[1], 0.2), ("oops", 0.3), (TAG_PIECES[0], 0.4)]
    assert words.restore(timed) == [(TAG_PIECES[0], 0.1), (TAG_PIECES[1], 0.2), ("oops", 0.3)]
    # The timing ended with the tag begun: it still stands for its word.
    assert words.flush() == [("Metformin", 0.4)]
    assert words.flush() == []


def test_restart_looks_for_the_markup_from_the_start_again() -> None:
    words = sent((BLOCK, "Metformin"))
    assert words.restore([(BLOCK, 0.2)]) == [("Metformin", 0.2)]
    words.restore([(TAG_PIECES[0], 0.3)])
    words.restart()  # the provider synthesizes the reply again
    assert words.restore([(BLOCK, 0.2)]) == [("Metformin", 0.2)]
    words.add([(TAG, "Metformin")])
    words.restore([(TAG_PIECES[0], 0.3)])
    words.drop_held()  # its audio is not coming
    assert words.flush() == []


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
