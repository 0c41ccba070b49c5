"""Eager end of turn (EagerUserTurnStrategies): the LLM answers the STT's predicted end of turn
ahead of time, the reply is held in the LLM service until the committed transcript confirms
it, and is dropped (its run cancelled) when the prediction is withdrawn or differs.

The frames mimic Deepgram Flux (Proposed start, Eager..., final transcript, Proposed stop);
the LLM is scripted and the clock virtual."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callpipe.frames.frames import (
    EagerEndOfTurnCancelFrame,
    EagerTranscriptionFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.llm_service import LLMService, ToolCall
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_clock import run_virtual
from callpipe.turns.user_stop import (
    EagerMatchPolicy,
    EagerUserTurnStopStrategy,
    ExactMatch,
    NormalizedMatch,
)
from callpipe.turns.user_stop.eager_match_policy import ExactMatch as ExactMatchAtPath
from callpipe.turns.user_stop.eager_user_turn_stop_strategy import (
    EagerUserTurnStopStrategy as EagerAtPath,
)
from callpipe.turns.user_turn_strategies import (
    EagerUserTurnStrategies,
    ExternalUserTurnStrategies,
    UserTurnStrategies,
)

WORD_SECS = 0.1
"""Virtual time the scripted LLM takes per word (the first included)."""


class ScriptedLLM(LLMService):
    """Answers "Sure: <last user text>" a word every ``WORD_SECS``; records each run."""

    def __init__(self, tool_calls: list[ToolCall] | None = None) -> None:
        super().__init__()
        self.runs: list[str] = []
        self.cancelled = 0
        self._tool_calls = tool_calls

    async def run_completion(self, context: Any) -> list[ToolCall]:
        text = str(context.messages[-1]["content"])
        self.runs.append(text)
        await self.push_frame(LLMFullResponseStartFrame())
        try:
            for word in ["Sure:", *text.split()]:
                await asyncio.sleep(WORD_SECS)
                await self.push_frame(LLMTextFrame(f"{word} "))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        await self.push_frame(LLMFullResponseEndFrame())
        calls, self._tool_calls = self._tool_calls, None
        return calls or []


class Clocked(FrameProcessor):
    """Notes the virtual time each downstream frame reached the end of the pipeline."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[tuple[Frame, float]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM and not isinstance(frame, StartFrame):
            self.times.append((frame, asyncio.get_running_loop().time()))
        await self.push_frame(frame, direction)


def eager(policy: EagerMatchPolicy | None = None, timeout: float = 5.0) -> UserTurnStrategies:
    return EagerUserTurnStrategies(match_policy=policy, speculation_timeout=timeout)


def turn_start() -> list[Frame]:
    return [ProposedUserStartedSpeakingFrame(), SleepFrame(0.05)]


def turn_end(text: str) -> list[Frame]:
    return [
        TranscriptionFrame(text, user_id="caller", timestamp=""),
        ProposedUserStoppedSpeakingFrame(),
        SleepFrame(2),
    ]


def predicted(text: str, wait: float = 0.25) -> list[Frame]:
    return [EagerTranscriptionFrame(text), SleepFrame(wait)]


class Run:
    def __init__(
        self, strategies: UserTurnStrategies, llm: ScriptedLLM | None = None, **kw: Any
    ) -> None:
        self.context = LLMContext()
        self.pair = LLMContextAggregatorPair(
            self.context, user_params=LLMUserAggregatorParams(user_turn_strategies=strategies)
        )
        self.llm = llm or ScriptedLLM()
        self.clock = Clocked()
        self.down: list[Frame] = []
        self.up: list[Frame] = []

    def __call__(self, frames: list[Frame]) -> Run:
        pipeline = Pipeline([self.pair.user(), self.llm, self.clock, self.pair.assistant()])

        async def main() -> tuple[list[Frame], list[Frame]]:
            return await run_test(pipeline, frames)

        self.down, self.up = run_virtual(main())
        return self

    def spoken(self) -> str:
        return "".join(f.text for f in self.down if isinstance(f, LLMTextFrame)).strip()

    def kinds(self) -> list[str]:
        keep = (
            LLMTextFrame,
            UserStoppedSpeakingFrame,
            EagerEndOfTurnCancelFrame,
            LLMFullResponseStartFrame,
        )
        return [type(f).__name__ for f in self.down if isinstance(f, keep)]


def test_strategies_and_policies_at_the_114_paths() -> None:
    strategies = EagerUserTurnStrategies(match_policy=ExactMatch(), speculation_timeout=2.0)
    stop = strategies.eager_strategy()
    assert strategies.stop is not None and stop is strategies.stop[0]
    assert isinstance(stop, EagerUserTurnStopStrategy)
    assert isinstance(stop.match_policy, ExactMatch) and stop.speculation_timeout == 2.0
    assert isinstance(strategies, ExternalUserTurnStrategies)
    assert strategies.proposed_stop_resolver() is stop
    default = EagerUserTurnStrategies().eager_strategy()
    assert default is not None and isinstance(default.match_policy, NormalizedMatch)
    assert ExactMatchAtPath is ExactMatch and EagerAtPath is EagerUserTurnStopStrategy
    assert UserTurnStrategies().eager_strategy() is None


def test_normalized_match_ignores_case_punctuation_spacing_and_apostrophes() -> None:
    normalized = NormalizedMatch()
    assert normalized.matches("its  five oclock", "It's five o'clock.")
    assert normalized.matches("book a table", "Book a table?")
    assert not normalized.matches("book a table", "Book a table for two.")
    exact = ExactMatch()
    assert exact.matches("book a table", "book a table")
    assert not exact.matches("book a table", "Book a table.")


def test_a_confirmed_prediction_releases_the_held_reply_once() -> None:
    run = Run(eager())(
        [*turn_start(), *predicted("book a table for two"), *turn_end("Book a table for two.")]
    )
    # One LLM run, on the predicted text; nothing of it left before the turn was confirmed.
    assert run.llm.runs == ["book a table for two"]
    assert run.kinds()[0] == "UserStoppedSpeakingFrame"
    assert run.spoken() == "Sure: book a table for two"
    assert run.kinds().count("LLMFullResponseStartFrame") == 1
    # The committed transcript is what the context keeps, followed by the reply.
    assert run.context.messages == [
        {"role": "user", "content": "Book a table for two."},
        {"role": "assistant", "content": "Sure: book a table for two"},
    ]


def test_a_withdrawn_prediction_is_dropped_and_its_run_cancelled() -> None:
    run = Run(eager())(
        [
            *turn_start(),
            *predicted("book a table", wait=0.15),  # withdrawn mid-reply
            EagerEndOfTurnCancelFrame(),
            SleepFrame(1),
        ]
    )
    assert run.llm.runs == ["book a table"] and run.llm.cancelled == 1
    assert run.spoken() == ""
    assert [f for f in run.down if isinstance(f, LLMFullResponseStartFrame)] == []
    assert run.context.messages == []


def test_after_a_withdrawal_the_turn_goes_on_and_is_answered_normally() -> None:
    run = Run(eager())(
        [
            *turn_start(),
            *predicted("book a table", wait=0.15),
            EagerEndOfTurnCancelFrame(),
            SleepFrame(0.3),
            *turn_end("Book a table for two."),
        ]
    )
    assert run.llm.runs == ["book a table", "Book a table for two."]
    assert run.spoken() == "Sure: Book a table for two."
    assert run.context.messages == [
        {"role": "user", "content": "Book a table for two."},
        {"role": "assistant", "content": "Sure: Book a table for two."},
    ]


def test_a_different_final_transcript_drops_the_reply_and_answers_it_anew() -> None:
    run = Run(eager())(
        [*turn_start(), *predicted("book a table"), *turn_end("Book a table for two.")]
    )
    assert run.llm.runs == ["book a table", "Book a table for two."]
    # The withdrawal reaches the LLM service before the stop that would release the reply.
    kinds = run.kinds()
    assert kinds.index("EagerEndOfTurnCancelFrame") < kinds.index("UserStoppedSpeakingFrame")
    assert run.spoken() == "Sure: Book a table for two."
    assert [m["content"] for m in run.context.messages] == [
        "Book a table for two.",
        "Sure: Book a table for two.",
    ]


@pytest.mark.parametrize(
    ("policy", "runs"),
    [
        (NormalizedMatch(), ["book a table"]),
        (ExactMatch(), ["book a table", "Book a table."]),
    ],
)
def test_the_match_policy_decides_whether_formatting_counts(
    policy: EagerMatchPolicy, runs: list[str]
) -> None:
    run = Run(eager(policy))(
        [*turn_start(), *predicted("book a table"), *turn_end("Book a table.")]
    )
    assert run.llm.runs == runs
    assert run.spoken() == f"Sure: {runs[-1]}"
    assert run.context.messages[0] == {"role": "user", "content": "Book a table."}
    assert len(run.context.messages) == 2


def test_an_unresolved_prediction_is_withdrawn_after_the_timeout() -> None:
    run = Run(eager(timeout=1.0))([*turn_start(), *predicted("book a table", wait=3)])
    assert run.llm.runs == ["book a table"]
    assert run.spoken() == ""
    assert any(isinstance(f, EagerEndOfTurnCancelFrame) for f in run.down)
    assert run.context.messages == []


def test_a_speculative_run_wanting_tools_is_withdrawn_and_rerun_on_the_turn() -> None:
    llm = ScriptedLLM(tool_calls=[ToolCall(id="c1", name="book", arguments="{}")])
    run = Run(eager(), llm=llm)(
        [*turn_start(), *predicted("book a table", wait=1), *turn_end("book a table")]
    )
    # The tool was not run for the unconfirmed turn: the committed turn ran the LLM again.
    assert llm.runs == ["book a table", "book a table"]
    assert not any(m.get("role") == "tool" for m in run.context.messages)
    assert run.context.messages[0] == {"role": "user", "content": "book a table"}


def test_eager_answers_reach_the_caller_sooner_than_waiting_for_the_end_of_turn() -> None:
    def first_word_delay(strategies: UserTurnStrategies) -> float:
        # Flux sends EagerEndOfTurn, then EndOfTurn a little later with the same words.
        run = Run(strategies)(
            [*turn_start(), *predicted("book a table", wait=0.5), *turn_end("Book a table.")]
        )
        stopped = next(t for f, t in run.clock.times if isinstance(f, UserStoppedSpeakingFrame))
        first = next(t for f, t in run.clock.times if isinstance(f, LLMTextFrame))
        assert run.spoken() == "Sure: book a table" or run.spoken() == "Sure: Book a table."
        return first - stopped

    with_eager = first_word_delay(eager())
    without = first_word_delay(ExternalUserTurnStrategies())
    assert with_eager == 0  # released with the stop: the words were ready
    assert without == pytest.approx(WORD_SECS)  # the LLM only starts at the stop
