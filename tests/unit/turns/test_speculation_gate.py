"""SpeculationGate on its own: what it holds, releases and drops, frame by frame."""

from __future__ import annotations

from callpipe.frames.frames import (
    EagerEndOfTurnCancelFrame,
    EndFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.processors.frame_processor import FrameDirection
from callpipe.turns.speculation_gate import SpeculationGate, SpeculationState

DOWN = FrameDirection.DOWNSTREAM


def feed(gate: SpeculationGate, frames: list[Frame]) -> list[Frame]:
    out: list[Frame] = []
    for frame in frames:
        out += [f for f, _ in gate.process(frame, DOWN)]
    return out


def reply(*words: str) -> list[Frame]:
    return [
        LLMFullResponseStartFrame(),
        *(LLMTextFrame(w) for w in words),
        LLMFullResponseEndFrame(),
    ]


def test_held_until_the_stop_then_released_in_order_after_it() -> None:
    gate = SpeculationGate()
    gate.begin_speculation(True)
    frames = reply("a", "b")
    assert feed(gate, frames) == [] and gate.state is SpeculationState.HOLDING
    stop = UserStoppedSpeakingFrame()
    assert feed(gate, [stop]) == [stop, *frames]
    assert gate.state is SpeculationState.OPEN and not gate.is_speculating


def test_a_withdrawal_keeps_only_uninterruptible_frames_and_drops_the_rest_of_the_reply() -> None:
    gate = SpeculationGate()
    gate.begin_speculation(True)
    kept = TextFrame("must arrive")
    kept.interruptible = False
    held = [LLMFullResponseStartFrame(), LLMTextFrame("a"), kept]
    feed(gate, held)
    cancel = EagerEndOfTurnCancelFrame()
    assert feed(gate, [cancel]) == [cancel, kept]
    # The rest of the withdrawn reply is dropped as it arrives, then the gate opens again.
    assert feed(gate, [LLMTextFrame("b"), LLMFullResponseEndFrame()]) == []
    after = TextFrame("later")
    assert feed(gate, [after]) == [after]


def test_a_run_begun_after_its_turn_ended_is_not_held() -> None:
    gate = SpeculationGate()
    feed(gate, [UserStoppedSpeakingFrame()])
    gate.begin_speculation(True)
    frames = reply("a")
    assert feed(gate, frames) == frames
    # A new turn opens: speculation is held again.
    feed(gate, [UserStartedSpeakingFrame()])
    gate.begin_speculation(True)
    assert feed(gate, reply("b")) == []


def test_ordinary_runs_pass_and_the_end_of_the_call_drops_a_held_reply() -> None:
    gate = SpeculationGate()
    gate.begin_speculation(False)
    frames = reply("a")
    assert feed(gate, frames) == frames
    gate.begin_speculation(True)
    feed(gate, reply("b"))
    end = EndFrame()
    assert feed(gate, [end]) == [end]
    upstream = TextFrame("up")
    assert gate.process(upstream, FrameDirection.UPSTREAM) == [(upstream, FrameDirection.UPSTREAM)]
