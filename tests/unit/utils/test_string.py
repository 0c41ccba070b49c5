"""Pipecat's public helpers in callpipe.utils.string (sentence splitting itself is tested in
tests/unit/services/test_sentences.py)."""

from __future__ import annotations

import re

import pytest

from callpipe.utils.string import (
    longest_trailing_partial_match,
    match_endofsentence,
    parse_start_end_tags,
    replace_match,
)


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("Hello, world.", "Hello, world."),  # a final full stop counts
        ("Hello, world", ""),
        ("  Hi! there", "  Hi!"),
        ("Dr. Smith is in. Next", "Dr. Smith is in."),
        ("It costs 3.50 dollars", ""),
        ('He said "stop." Then', 'He said "stop."'),
        ("好的。再见", "好的。"),
        ("", ""),
    ],
)
def test_match_endofsentence(text: str, sentence: str) -> None:
    assert text[: match_endofsentence(text, language="en")] == sentence
    assert (match_endofsentence(text) == 0) == (sentence == "")


def test_replace_match_only_inside_the_match() -> None:
    text = "a.b <spell>a.b</spell> a.b"
    match = re.search(r"<spell>.*?</spell>", text)
    assert match is not None
    assert replace_match(text, match, ".", " dot ") == "a.b <spell>a dot b</spell> a.b"


def test_parse_start_end_tags_follows_streamed_text() -> None:
    tags = [("<a>", "</a>"), ("<spell>", "</spell>")]
    text = "say <spell>AB"
    tag, index = parse_start_end_tags(text, tags, None, 0)
    assert (tag, index) == (("<spell>", "</spell>"), len(text))
    text += "C"
    assert parse_start_end_tags(text, tags, tag, index) == (tag, index)  # still inside
    text += "</spell> done"
    assert parse_start_end_tags(text, tags, tag, index) == (None, len(text))
    assert parse_start_end_tags("plain", tags, None, 0) == (None, 0)
    assert parse_start_end_tags("<a>x</a>", tags, None, 0) == (None, 8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("hello <sp", 3), ("hello <", 1), ("hello <spell>", 0), ("hello", 0), ("x </a", 3)],
)
def test_longest_trailing_partial_match(text: str, expected: int) -> None:
    assert longest_trailing_partial_match(text, ["<spell>", "</a>"]) == expected
