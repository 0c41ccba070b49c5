"""LLMTextProcessor: LLM tokens in, one AggregatedTextFrame per piece out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callpipe.frames.frames import (
    AggregatedTextFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_text_processor import LLMTextProcessor
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.utils.text.pattern_pair_aggregator import MatchAction, PatternPairAggregator

RATE = 8000


def tokens(*texts: str, skip_tts: bool | None = None) -> list[Frame]:
    frames: list[Frame] = []
    for text in texts:
        frame = LLMTextFrame(text)
        frame.skip_tts = skip_tts
        frames.append(frame)
    return frames


def reply(*texts: str, skip_tts: bool | None = None) -> list[Frame]:
    return [
        LLMFullResponseStartFrame(),
        *tokens(*texts, skip_tts=skip_tts),
        LLMFullResponseEndFrame(),
    ]


def pieces(frames: list[Frame]) -> list[tuple[str, str]]:
    return [(f.text_type, f.text) for f in frames if isinstance(f, AggregatedTextFrame)]


async def test_tokens_become_sentences_and_the_rest_comes_at_the_reply_end() -> None:
    down, _ = await run_test(LLMTextProcessor(), reply("Hel", "lo there. How", " are", " you"))
    assert pieces(down) == [("sentence", "Hello there."), ("sentence", "How are you")]
    assert not any(isinstance(f, LLMTextFrame) for f in down)
    kinds = [type(f) for f in down]
    # The flushed rest goes before the reply's end.
    assert kinds.index(LLMFullResponseEndFrame) > max(
        i for i, k in enumerate(kinds) if k is AggregatedTextFrame
    )
    assert all(f.append_to_context for f in down if isinstance(f, AggregatedTextFrame))


async def test_skip_tts_is_kept_on_every_piece() -> None:
    down, _ = await run_test(LLMTextProcessor(), reply("Noted. For ", "later", skip_tts=True))
    out = [f for f in down if isinstance(f, AggregatedTextFrame)]
    assert [(f.text, f.skip_tts) for f in out] == [("Noted.", True), ("For later", True)]


async def test_an_interruption_drops_the_held_text() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        *tokens("Half a sen"),
        InterruptionFrame(),
        LLMFullResponseStartFrame(),
        *tokens("New one."),
        TTSStoppedFrame(),
    ]
    down, _ = await run_test(LLMTextProcessor(), frames)
    assert pieces(down) == [("sentence", "New one.")]


async def test_a_pattern_block_keeps_its_delimiters_as_raw_text() -> None:
    aggregator = PatternPairAggregator().add_pattern(
        "spell", "<spell>", "</spell>", MatchAction.AGGREGATE
    )

    async def shout(text: str, text_type: str) -> str:
        return text.upper()

    processor = LLMTextProcessor(text_aggregator=aggregator, text_transforms=[("spell", shout)])
    down, _ = await run_test(processor, reply("Code: <spell>ab", "c</spell> ok."))
    out = [f for f in down if isinstance(f, AggregatedTextFrame)]
    assert [(f.text_type, f.text, f.raw_text) for f in out] == [
        ("sentence", "Code:", None),
        ("spell", "ABC", "<spell>ABC</spell>"),
        ("sentence", "ok.", None),
    ]


async def test_transforms_rewrite_drop_and_fail_safely() -> None:
    async def no_umm(text: str, text_type: str) -> str:
        return "" if text.startswith("Umm") else text.replace("Bob", "Robert")

    async def broken(text: str, text_type: str) -> str:
        if "secret" in text:
            raise RuntimeError("transform bug")
        return text

    processor = LLMTextProcessor(text_transforms=[("*", no_umm)])
    processor.add_text_transformer(broken, "sentence")
    frames = reply("Umm. Hi Bob. The secret is out. Bye.")
    down, up = await run_test(processor, frames)
    assert pieces(down) == [("sentence", "Hi Robert."), ("sentence", "Bye.")]
    assert any(isinstance(f, ErrorFrame) for f in up)

    processor.remove_text_transformer(broken, "sentence")
    down, _ = await run_test(processor, reply("The secret is out."))
    assert pieces(down) == [("sentence", "The secret is out.")]


@pytest.fixture
async def cartesia() -> AsyncIterator[FakeCartesiaServer]:
    async with FakeCartesiaServer(secs_per_word=0.01, chunk_secs=0.04) as fake:
        yield fake


async def test_a_tts_speaks_each_piece_whole(cartesia: FakeCartesiaServer) -> None:
    aggregator = PatternPairAggregator().add_pattern(
        "spell", "<spell>", "</spell>", MatchAction.AGGREGATE
    )
    tts = CartesiaTTSService(
        api_key="test-key", voice_id="v", url=cartesia.url, skip_text_types=["spell"]
    )
    pipeline = Pipeline([LLMTextProcessor(text_aggregator=aggregator), tts])
    frames = [*reply("Your code: <spell>4", "815</spell> Hi there. Bye."), SleepFrame(0.3)]
    params = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
    down, _ = await run_test(pipeline, frames, params=params)
    sent = [m["transcript"].strip() for m in cartesia.messages if m.get("transcript", "").strip()]
    assert sent == ["Your code:", "Hi there.", "Bye."]
    skipped = [f for f in down if isinstance(f, AggregatedTextFrame) and f.skip_tts]
    assert [(f.text, f.raw_text) for f in skipped] == [("4815", "<spell>4815</spell>")]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)]
