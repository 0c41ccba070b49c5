"""SyncParallelPipeline: each input's output leaves together, in arrival or branch order."""

from __future__ import annotations

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    EndFrame,
    Frame,
    InputDTMFFrame,
    InterruptionFrame,
    KeypadEntry,
    TextFrame,
)
from callpipe.pipeline.parallel_pipeline import ParallelPipeline
from callpipe.pipeline.sync_parallel_pipeline import FrameOrder, SyncFrame, SyncParallelPipeline
from callpipe.processors.filters.identity_filter import IdentityFilter
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame

from .helpers import Slow, Suffixer


def texts(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TextFrame)]


def branches() -> tuple[list[Slow | Suffixer], list[Slow | Suffixer]]:
    """A slow branch first, a fast one second."""
    return [Slow(0.03), Suffixer(" slow")], [Suffixer(" fast")]


async def test_plain_parallel_pipeline_lets_the_fast_branch_run_ahead() -> None:
    down, _ = await run_test(ParallelPipeline(*branches()), [TextFrame("1"), TextFrame("2")])
    assert texts(down) == ["1 fast", "2 fast", "1 slow", "2 slow"]  # what the sync one fixes


async def test_output_of_each_input_leaves_together_in_arrival_order() -> None:
    pipeline = SyncParallelPipeline(*branches())
    down, _ = await run_test(pipeline, [TextFrame("1"), TextFrame("2")])
    assert texts(down) == ["1 fast", "1 slow", "2 fast", "2 slow"]
    assert not [f for f in down if isinstance(f, SyncFrame)]
    assert [f for f in down if isinstance(f, EndFrame)] == [down[-1]]  # once, and last


async def test_pipeline_order_puts_each_branch_output_in_definition_order() -> None:
    pipeline = SyncParallelPipeline(*branches(), frame_order=FrameOrder.PIPELINE)
    down, _ = await run_test(pipeline, [TextFrame("1"), TextFrame("2")])
    assert texts(down) == ["1 slow", "1 fast", "2 slow", "2 fast"]


async def test_a_frame_through_several_branches_leaves_once() -> None:
    pipeline = SyncParallelPipeline([IdentityFilter()], [IdentityFilter()], [Suffixer("!")])
    down, _ = await run_test(pipeline, [TextFrame("a"), TextFrame("b")])
    assert texts(down) == ["a", "a!", "b", "b!"]


async def test_system_frames_are_not_held_behind_a_round() -> None:
    pipeline = SyncParallelPipeline([Slow(0.2)], [IdentityFilter()])
    dtmf = InputDTMFFrame(KeypadEntry.ONE)
    down, _ = await run_test(pipeline, [TextFrame("1"), SleepFrame(0.05), dtmf])
    order = [f for f in down if isinstance(f, TextFrame | InputDTMFFrame)]
    assert order[0] is dtmf and texts(order) == ["1"]


async def test_an_interruption_abandons_the_round_and_the_next_one_works() -> None:
    slow = Slow(0.2)
    pipeline = SyncParallelPipeline([slow], [Suffixer(" fast")])
    frames = [TextFrame("1"), SleepFrame(0.05), InterruptionFrame(), TextFrame("2")]
    down, _ = await run_test(pipeline, frames)
    assert texts(down) == ["2 fast", "2"]
    assert slow.started == ["1", "2"] and slow.finished == ["2"]


def test_needs_a_branch() -> None:
    with pytest.raises(ConfigurationError):
        SyncParallelPipeline()
