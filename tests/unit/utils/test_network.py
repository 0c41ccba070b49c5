"""Pipecat's ``utils.network`` retry helpers."""

from __future__ import annotations

from callpipe.utils.network import QuickFailureTracker, exponential_backoff_time


def test_backoff_doubles_between_its_bounds() -> None:
    assert [exponential_backoff_time(n) for n in (1, 2, 3, 4, 5)] == [4, 4, 4, 8, 10]
    waits = [
        exponential_backoff_time(n, min_wait=0.5, max_wait=3, multiplier=0.5) for n in (1, 3, 9)
    ]
    assert waits == [0.5, 2.0, 3]
    assert exponential_backoff_time(100_000) == 10  # no overflow on a long retry loop


def test_quick_failures_in_a_row_give_up_and_a_stable_one_resets() -> None:
    tracker = QuickFailureTracker(min_stable_duration=5.0, max_consecutive_failures=3)
    assert not tracker.record(1.0).should_give_up
    assert not tracker.record(9.0).is_quick_failure  # ran a while: the streak ends
    assert [tracker.record(0.1).should_give_up for _ in range(3)] == [False, False, True]
    tracker.reset()
    assert tracker.count == 0
