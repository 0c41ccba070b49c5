"""Retry helpers for code that reconnects (Pipecat 1.14's ``utils.network`` path).

:func:`exponential_backoff_time` is Pipecat's wait rule, for custom services written against
it; callpipe's own sockets use shorter waits of their own (a caller on the line cannot wait
Pipecat's 4-10 s). :class:`QuickFailureTracker` tells a connection that keeps dying right after
it opens (a refused key behind an accepted handshake), which backoff cannot fix, from one that
ran a while first.
"""

from __future__ import annotations

from dataclasses import dataclass


def exponential_backoff_time(
    attempt: int, min_wait: float = 4, max_wait: float = 10, multiplier: float = 1
) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): ``multiplier`` doubled per attempt,
    kept between ``min_wait`` and ``max_wait``."""
    try:
        wait = multiplier * 2.0 ** (attempt - 1)
    except OverflowError:
        return max_wait
    return max(min_wait, min(wait, max_wait))


@dataclass(frozen=True)
class QuickFailureResult:
    """One recorded failure: whether it came soon after connecting, and whether enough did in a
    row that retrying should stop."""

    is_quick_failure: bool
    should_give_up: bool


class QuickFailureTracker:
    """Counts connections in a row that failed within ``min_stable_duration`` seconds of
    opening; at ``max_consecutive_failures`` the caller should give up."""

    def __init__(self, min_stable_duration: float = 5.0, max_consecutive_failures: int = 3) -> None:
        self.min_stable_duration = min_stable_duration
        self.max_consecutive_failures = max_consecutive_failures
        self.count = 0

    def record(self, duration: float) -> QuickFailureResult:
        """A connection failed after ``duration`` seconds: a quick one extends the streak, a
        stable one ends it."""
        quick = duration < self.min_stable_duration
        self.count = self.count + 1 if quick else 0
        return QuickFailureResult(quick, quick and self.count >= self.max_consecutive_failures)

    def reset(self) -> None:
        """A fresh start (a wanted connect): no streak."""
        self.count = 0


__all__ = ["QuickFailureResult", "QuickFailureTracker", "exponential_backoff_time"]
