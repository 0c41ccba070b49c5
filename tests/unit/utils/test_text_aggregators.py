"""Text aggregators: sentences, tags that are never cut, and delimited blocks."""

from __future__ import annotations

import pytest

from callpipe.errors import ConfigurationError
from callpipe.utils.text.base_text_aggregator import Aggregation, BaseTextAggregator, TextType
from callpipe.utils.text.pattern_pair_aggregator import (
    MatchAction,
    PatternMatch,
    PatternPairAggregator,
)
from callpipe.utils.text.simple_text_aggregator import SimpleTextAggregator
from callpipe.utils.text.skip_tags_aggregator import SkipTagsAggregator

SPELL = ("<spell>", "</spell>")


async def pieces(aggregator: BaseTextAggregator, chunks: list[str]) -> list[tuple[str, str]]:
    """Feed the chunks, then flush; the pieces as (type, text), the flushed one last."""
    out: list[tuple[str, str]] = []
    for chunk in chunks:
        async for piece in aggregator.aggregate(chunk):
            out.append((str(piece.type), piece.text))
    last = await aggregator.flush()
    if last is not None:
        out.append((f"flush {last.type}", last.text))
    return out


async def test_sentences_come_out_as_they_end_and_the_rest_at_flush() -> None:
    aggregator = SimpleTextAggregator()
    chunks = ["Hello there", ". It costs 3.", "5 dollars! Dr. Smith", " is in."]
    assert await pieces(aggregator, chunks) == [
        ("sentence", "Hello there."),
        ("sentence", "It costs 3.5 dollars!"),
        ("flush sentence", "Dr. Smith is in."),
    ]
    assert await aggregator.flush() is None


async def test_token_mode_passes_chunks_straight_on() -> None:
    aggregator = SimpleTextAggregator(aggregation_type=TextType.TOKEN)
    assert aggregator.aggregation_type is TextType.TOKEN
    assert await pieces(aggregator, ["Hel", "lo. ", "You"]) == [
        ("token", "Hel"),
        ("token", "lo. "),
        ("token", "You"),
    ]


async def test_text_held_and_an_interruption_drops_it() -> None:
    aggregator = SimpleTextAggregator(language="de")
    assert [a async for a in aggregator.aggregate("Halb fertig")] == []
    assert aggregator.text == Aggregation("Halb fertig", TextType.SENTENCE)
    assert aggregator.language == "de"
    await aggregator.handle_interruption()
    assert await aggregator.flush() is None


async def test_a_tag_is_never_cut_even_when_split_across_chunks() -> None:
    aggregator = SkipTagsAggregator([SPELL])
    chunks = ["Your code is <sp", "ell>A. B. C.</spell>. ", "Thanks. Bye"]
    assert await pieces(aggregator, chunks) == [
        ("sentence", "Your code is <spell>A. B. C.</spell>."),
        ("sentence", "Thanks."),
        ("flush sentence", "Bye"),
    ]


async def test_skip_tags_in_token_mode_hold_only_the_tag() -> None:
    aggregator = SkipTagsAggregator([SPELL], aggregation_type=TextType.TOKEN)
    chunks = ["Code: <sp", "ell>A. B.", "</spell> ok", " <spell>Z"]
    assert await pieces(aggregator, chunks) == [
        ("token", "Code: "),
        ("token", "<spell>A. B.</spell> ok"),
        ("flush token", " <spell>Z"),
    ]


async def test_an_interruption_closes_an_open_tag() -> None:
    aggregator = SkipTagsAggregator([SPELL])
    assert [a async for a in aggregator.aggregate("Say <spell>A. B")] == []
    await aggregator.handle_interruption()
    assert await pieces(aggregator, ["New. Text. "]) == [
        ("sentence", "New."),
        ("sentence", "Text."),
    ]


def voice_aggregator(seen: list[PatternMatch]) -> PatternPairAggregator:
    async def on_match(match: PatternMatch) -> None:
        seen.append(match)

    return (
        PatternPairAggregator()
        .add_pattern("voice", "<voice>", "</voice>")
        .add_pattern("code", "```", "```", MatchAction.AGGREGATE)
        .add_pattern("em", "<em>", "</em>", MatchAction.KEEP)
        .on_pattern_match("voice", on_match)
        .on_pattern_match("code", on_match)
        .on_pattern_match("em", on_match)
    )


async def test_pattern_blocks_are_removed_kept_or_given_out_alone() -> None:
    seen: list[PatternMatch] = []
    aggregator = voice_aggregator(seen)
    chunks = [
        "<voice>char",
        "lie</voice>Hello. Run ",
        "this ```print(1)",
        "``` now. <em>A.</em> ok. ",
    ]
    assert await pieces(aggregator, chunks) == [
        ("sentence", "Hello."),
        ("sentence", "Run this"),
        ("code", "print(1)"),
        ("sentence", "now."),
        ("sentence", "<em>A.</em> ok."),
    ]
    assert [(m.type, m.text, m.full_match) for m in seen] == [
        ("voice", "charlie", "<voice>charlie</voice>"),
        ("code", "print(1)", "```print(1)```"),
        ("em", "A.", "<em>A.</em>"),
    ]


async def test_flush_drops_an_unclosed_block_unless_kept() -> None:
    seen: list[PatternMatch] = []
    aggregator = voice_aggregator(seen)
    assert await pieces(aggregator, ["Bye <voice>fel"]) == [("flush sentence", "Bye")]
    assert await pieces(aggregator, ["Bye <voi"]) == [("flush sentence", "Bye")]
    assert await pieces(aggregator, ["Bye <em>now"]) == [("flush sentence", "Bye <em>now")]
    assert seen == []


async def test_no_sentence_comes_out_while_a_block_is_open() -> None:
    aggregator = voice_aggregator([])
    chunks = ["<voice>A. B. ", "C.</voice>Hi. "]
    assert await pieces(aggregator, chunks) == [("sentence", "Hi.")]
    assert aggregator.text == Aggregation("", TextType.SENTENCE)
    assert [a async for a in aggregator.aggregate("```x. ")] == []
    assert aggregator.text == Aggregation("```x.", "code")


async def test_a_failing_handler_does_not_stop_the_text() -> None:
    async def broken(match: PatternMatch) -> None:
        raise RuntimeError("handler bug")

    aggregator = PatternPairAggregator().add_pattern("x", "[", "]").on_pattern_match("x", broken)
    assert await pieces(aggregator, ["A [b] cat. "]) == [("sentence", "A  cat.")]


def test_reserved_types_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        PatternPairAggregator().add_pattern(TextType.SENTENCE, "<", ">")
