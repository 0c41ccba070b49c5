"""Sentence splitting of streamed LLM text."""

from __future__ import annotations

import pytest

from callpipe.utils.string import SentenceAggregator, split_sentences


@pytest.mark.parametrize(
    ("buffer", "sentences", "rest"),
    [
        ("Hello there. How are", ["Hello there."], " How are"),
        ("It costs 3.5 dollars. Ok", ["It costs 3.5 dollars."], " Ok"),
        ("Dr. Smith is in. Bye", ["Dr. Smith is in."], " Bye"),
        ("Call J. Doe now. Then", ["Call J. Doe now."], " Then"),
        ("Wait.", [], "Wait."),  # could still become "Wait.5"
        ("Really?", ["Really?"], ""),
        ("Wow!! Great", ["Wow!!"], " Great"),
        ('He said "stop." Then', ['He said "stop."'], " Then"),
        ("你好。我是", ["你好。"], "我是"),
        ("no end yet", [], "no end yet"),
    ],
)
def test_split_sentences(buffer: str, sentences: list[str], rest: str) -> None:
    assert split_sentences(buffer) == (sentences, rest)


def test_aggregator_streams_tokens() -> None:
    aggregator = SentenceAggregator()
    out: list[str] = []
    for token in ["Sure", ".", " The", " total", " is", " 3", ".", "5", " euros", ".", " Bye"]:
        out += aggregator.push(token)
    assert out == ["Sure.", "The total is 3.5 euros."]
    assert aggregator.flush() == "Bye"
    assert aggregator.flush() is None


def test_long_run_without_full_stop_is_cut_at_a_clause() -> None:
    aggregator = SentenceAggregator(max_chars=40)
    out = aggregator.push("first we go north, then we turn left and keep going for miles")
    assert out == ["first we go north,"]
    assert aggregator.text.startswith("then")
