"""DTMFAggregator: entries end on '#', on timeout and at the end; digits reach the LLM."""

from __future__ import annotations

from callpipe.frames.frames import (
    BotInterruptionFrame,
    InputDTMFFrame,
    KeypadEntry,
    LLMContextFrame,
    TranscriptionFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.dtmf_aggregator import DTMFAggregator
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame


def keys(text: str) -> list[InputDTMFFrame]:
    return [InputDTMFFrame(KeypadEntry(c)) for c in text]


def transcripts(frames: list[object]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TranscriptionFrame)]


async def test_termination_digit_flushes_and_first_digit_interrupts() -> None:
    down, up = await run_test(DTMFAggregator(), [*keys("12#"), *keys("3*#")])
    assert transcripts(down) == ["DTMF: 12#", "DTMF: 3*#"]
    assert len([f for f in up if isinstance(f, BotInterruptionFrame)]) == 2
    # The digits themselves still flow on (bots may watch them).
    assert len([f for f in down if isinstance(f, InputDTMFFrame)]) == 6


async def test_timeout_prefix_and_custom_terminator() -> None:
    aggregator = DTMFAggregator(timeout=0.15, termination_digit="*", prefix="Keys: ")
    down, _ = await run_test(aggregator, [*keys("45"), SleepFrame(0.3), *keys("6")])
    # "45" by timeout; "6" flushed by the end of the call.
    assert transcripts(down) == ["Keys: 45", "Keys: 6"]


async def test_digits_reach_the_llm_context() -> None:
    context = LLMContext([{"role": "system", "content": "Ask for the account number."}])
    user, _ = LLMContextAggregatorPair(context)
    pipeline = Pipeline([DTMFAggregator(), user])
    down, _ = await run_test(pipeline, [*keys("4321#"), SleepFrame(0.7)])
    assert context.messages[-1] == {"role": "user", "content": "DTMF: 4321#"}
    assert len([f for f in down if isinstance(f, LLMContextFrame)]) == 1
