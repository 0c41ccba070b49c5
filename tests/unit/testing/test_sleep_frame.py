"""SleepFrame: a fixed wait, or a wait for a condition with a cap."""

from __future__ import annotations

from callpipe.testing.pipeline import SleepFrame


async def test_until_ends_the_wait_as_soon_as_it_holds() -> None:
    checks: list[int] = []

    def third_time() -> bool:
        checks.append(1)
        return len(checks) == 3

    await SleepFrame(60.0, until=third_time).wait()  # would hang the test if the cap were used
    assert len(checks) == 3


async def test_seconds_caps_a_condition_that_never_holds() -> None:
    checks: list[int] = []

    def never() -> bool:
        checks.append(1)
        return False

    await SleepFrame(0.05, until=never).wait()
    assert 1 <= len(checks) <= 10  # polled every 10 ms, then given up
