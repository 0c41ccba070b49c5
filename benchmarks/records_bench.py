"""What a call record costs on the per-frame path, and what a recording costs per packet.

Run: ``.venv/bin/python benchmarks/records_bench.py [--frames N] [--rounds R]``.

1. The 10-processor pipeline of ``pipeline_bench.py`` (frames/second through 11 hops), with
   records off and on (a :class:`CallRecorder` observing the task, as the runner sets it up),
   alternating rounds so machine load hits both alike; the median of each is reported.
2. :class:`CallRecording`: microseconds per 20 ms packet pair (one caller packet in, one bot
   packet out), i.e. the CPU a recording adds per call-second (× 50).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _pipeline_bench_common import CASES  # noqa: E402
from callpipe.transports.call_record import CallRecorder, recording_calls  # noqa: E402
from callpipe.transports.recording import CallRecording, LocalDirectoryStorage  # noqa: E402
from pipeline_bench import one  # noqa: E402


async def pipeline_rates(frames: int, rounds: int) -> dict[str, dict[str, float]]:
    rates: dict[str, dict[str, list[float]]] = {"off": {}, "on": {}}
    for _ in range(rounds):
        for mode in ("off", "on"):
            for case in CASES:
                if mode == "on":
                    with recording_calls(CallRecorder()):
                        rate = await one(case, frames)
                else:
                    rate = await one(case, frames)
                rates[mode].setdefault(case, []).append(rate)
    return {m: {c: statistics.median(v) for c, v in per.items()} for m, per in rates.items()}


def recording_cost(seconds: int) -> float:
    """Microseconds per 20 ms caller packet + 20 ms bot packet."""
    packet = bytes(320)
    with tempfile.TemporaryDirectory() as tmp:
        rec = CallRecording(LocalDirectoryStorage(tmp), "bench.wav")
        rec.start(0.0)
        n = seconds * 50
        start = time.perf_counter()
        for i in range(n):
            t = i * 0.02
            rec.caller_audio(packet, 8000, t)
            rec.bot_audio(packet, 8000, t + 0.04, t)
        elapsed = time.perf_counter() - start
        rec.close()
    return elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates = asyncio.run(pipeline_rates(args.frames, args.rounds))
    print(f"10-processor pipeline, {args.frames} frames, median of {args.rounds} rounds")
    print(f"{'case':8s} {'records off':>14s} {'records on':>14s} {'on/off':>7s}")
    for case in CASES:
        off, on = rates["off"][case], rates["on"][case]
        print(f"{case:8s} {off:14,.0f} {on:14,.0f} {on / off:7.3f}")
    us = recording_cost(600)
    share = us * 50 / 1e4
    print(f"recording: {us:.1f} µs per 20 ms packet pair = {share:.3f} % of a core per call")


if __name__ == "__main__":
    main()
