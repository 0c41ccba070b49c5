"""Word error rate: normalisation and edit distance."""

from __future__ import annotations

from callpipe.testing.wer import normalize_words, word_error_rate, word_errors


def test_normalisation_drops_case_punctuation_and_spells_digits() -> None:
    assert normalize_words("Yes, the order is 4567.") == [
        "yes", "the", "order", "is", "four", "five", "six", "seven",
    ]  # fmt: skip
    assert normalize_words("Don't re-book") == ["don't", "re", "book"]


def test_edit_distance_counts_substitutions_insertions_and_deletions() -> None:
    assert word_errors("a b c", "a b c") == (0, 3)
    assert word_errors("a b c", "a x c") == (1, 3)
    assert word_errors("a b c", "a c") == (1, 3)
    assert word_errors("a b c", "a b c d e") == (2, 3)
    assert word_errors("a b", "") == (2, 2)


def test_corpus_rate_weights_by_reference_words() -> None:
    assert word_error_rate([("a b c d", "a b c d"), ("x y", "z")]) == 2 / 6
    assert word_error_rate([]) == 0.0
