"""Isolation: a garbage flood on one call does not hurt its neighbour (see ``isolation.py``).

The strict comparison (the issue's 10% bound, median of several rounds) is the script
``tests/reliability/isolation.py``; here one round each, with bounds that hold on a loaded
2-core CI machine but still catch a loop-starving flood (which costs the neighbour hundreds of
milliseconds, see the commit that added the flood guard).
"""

from __future__ import annotations

import pytest

from .isolation import Measure, measure

pytestmark = [pytest.mark.integration, pytest.mark.solo]


def _undisturbed(quiet: Measure, flooded: Measure) -> bool:
    return (
        flooded.gap_p99_ms <= max(quiet.gap_p99_ms * 1.5, quiet.gap_p99_ms + 15.0)
        and flooded.interrupt_ms <= quiet.interrupt_ms + 40.0
    )


async def test_a_steady_garbage_flood_does_not_disturb_the_neighbour() -> None:
    # About 150 gaps per round, so the p99 is nearly their maximum: one scheduler stall of the
    # loaded CI machine in either round moves it. A disturbance the flood causes shows up in
    # every round; a stall of the host does not repeat. Hence a second pair when the first fails.
    for attempt in (1, 2):
        quiet = await measure(flood_rate=None)
        flooded = await measure(flood_rate=900.0)  # under the flood guard: the call goes on
        print(f"\nround {attempt}\nquiet: {quiet}\nflood: {flooded}")
        assert flooded.flood_messages > 2000
        assert "caller hung up" in flooded.flood_end  # the flooding call was not cut off
        if _undisturbed(quiet, flooded):
            break
    assert flooded.gap_p99_ms <= max(quiet.gap_p99_ms * 1.5, quiet.gap_p99_ms + 15.0)
    assert flooded.interrupt_ms <= quiet.interrupt_ms + 40.0


def _kept_timing(quiet: Measure, flooded: Measure) -> bool:
    return (
        flooded.late_gaps <= 6
        and 17.0 <= flooded.gap_p50_ms <= 23.0
        and flooded.interrupt_ms <= quiet.interrupt_ms + 40.0
    )


async def test_a_flat_out_flood_is_cut_off_and_the_neighbour_keeps_its_timing() -> None:
    # One interruption and one burst per round: a stall of the loaded host lands on either as
    # easily as the flood would, but does not repeat; a second pair when the first fails.
    for attempt in (1, 2):
        quiet = await measure(flood_rate=None)
        flooded = await measure(flood_rate=0)
        print(f"\nround {attempt}\nquiet: {quiet}\nflood: {flooded}")
        assert "error (message flood)" in flooded.flood_end
        assert "ConnectionClosed" in flooded.flood_end
        if _kept_timing(quiet, flooded):
            break
    # While the burst allowance lasts (~0.3 s), uvicorn parses the flood in large socket reads
    # that can delay a packet or two; after the cut-off the timing is the quiet run's. Without
    # the guard, packets arrive in bursts for the whole flood (median gap near 0, dozens late).
    # Full-suite runs on the 2-core CI machine see 4-5 late packets during that burst.
    assert flooded.late_gaps <= 6
    assert 17.0 <= flooded.gap_p50_ms <= 23.0
    assert flooded.interrupt_ms <= quiet.interrupt_ms + 40.0
