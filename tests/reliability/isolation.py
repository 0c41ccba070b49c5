"""Isolation measurement: does a garbage flood on one call hurt its neighbour?

A neighbour call hears a greeting and barges in half-way; we measure the greeting's outbound
packet gaps (p50/p99/max, at the caller) and the interruption delay (first loud caller packet
sent → ``clear`` received). Then again while another call on the same server receives a flood
of garbage from a separate process (so the flooder does not share our CPU time slice).

Run as a script for the strict comparison (the issue's 10% bound)::

    .venv/bin/python tests/reliability/isolation.py --rounds 3

``test_isolation.py`` runs one round and asserts a looser bound that holds on a loaded 2-core
CI machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``reliability.helpers`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from reliability.helpers import BotConfig, BotServer, Caller, serve, tone
else:
    from .helpers import BotConfig, BotServer, Caller, serve, tone

GREETING_SECS = 3.0
BARGE_IN_AT = 1.8  # seconds after the greeting's first packet

FLOODER = r"""
import json, sys, time
from websockets.sync.client import connect
url, secs, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
sid = "MZ" + "9" * 32
with connect(url, compression=None, max_size=None, close_timeout=0.5) as ws:
    ws.send(json.dumps({"event": "connected"}))
    ws.send(json.dumps({"event": "start", "start": {"streamSid": sid, "callSid": "CA" + "9" * 32,
        "accountSid": "AC1", "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}}))
    garbage = ["{", "[1]", '{"event":"nope"}', '{"event":"media","media":{"payload":"!!"}}',
               '{"event":"dtmf","dtmf":{"digit":"Z"}}', "x" * 200]
    print("ready", flush=True)
    sys.stdin.readline()  # go
    start = time.monotonic()
    end = start + secs
    n = 0
    try:
        while time.monotonic() < end:
            for g in garbage:
                ws.send(g)
            n += len(garbage)
            if rate:
                time.sleep(max(0.0, start + n / rate - time.monotonic()))
    except Exception as exc:  # the server ended the flooding call
        print(n, type(exc).__name__, flush=True)
    else:
        print(n, "-", flush=True)
"""


@dataclass
class Measure:
    gap_p50_ms: float
    gap_p99_ms: float
    gap_max_ms: float
    interrupt_ms: float
    late_gaps: int = 0  # gaps over 60 ms: a caller-side jitter buffer may run dry
    flood_messages: int = 0
    flood_end: str = ""

    def __str__(self) -> str:
        return (
            f"gap p50 {self.gap_p50_ms:.1f} ms, p99 {self.gap_p99_ms:.1f} ms, "
            f"max {self.gap_max_ms:.1f} ms, {self.late_gaps} over 60 ms, "
            f"interruption {self.interrupt_ms:.0f} ms"
            + (
                f", flood {self.flood_messages} msgs ({self.flood_end})"
                if self.flood_messages
                else ""
            )
        )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _neighbour_call(addr: str, server: BotServer, go: Any) -> Measure:
    async with Caller(f"ws://{addr}/ws", 1) as caller:
        loop = asyncio.get_running_loop()
        while not caller.media_times():
            await caller.send_silence(0.02)
        first = caller.media_times()[0]
        go()  # the flood starts now, during the greeting
        speech_sent: list[float] = []
        t0 = loop.time()
        n = 0
        # Real providers stream 20 ms packets all call long: silence, then the caller speaks.
        while time.monotonic() < first + BARGE_IN_AT:
            await caller.send_raw(caller.media_message(bytes(320)))
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * 0.02 - loop.time()))

        def note(i: int) -> None:
            if i == 0:
                speech_sent.append(time.monotonic())

        await caller.send_audio(tone(0.5, amp=12000), on_packet=note)
        await asyncio.sleep(0.2)
        clears = caller.events("clear")
        assert clears, "the barge-in produced no clear"
        media = [t for t in caller.media_times() if t < clears[0].t]
    gaps = [(b - a) * 1000 for a, b in zip(media, media[1:], strict=False)][5:]
    return Measure(
        gap_p50_ms=statistics.median(gaps),
        gap_p99_ms=_percentile(gaps, 0.99),
        gap_max_ms=max(gaps),
        late_gaps=sum(1 for g in gaps if g > 60.0),
        interrupt_ms=(clears[0].t - speech_sent[0]) * 1000,
    )


async def measure(*, flood_rate: float | None) -> Measure:
    """One neighbour call; ``flood_rate`` garbage messages/s on another call (0: flat out;
    None: no flood)."""
    server = BotServer(
        BotConfig(
            echo=False,
            vad=True,
            greeting_secs=GREETING_SECS,
            # Gaps are judged per 20 ms packet here: one message per packet.
            transport={"audio_out_max_message_ms": 0},
        )
    )
    async with serve(server.app) as addr:
        proc = None
        if flood_rate is not None:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                FLOODER,
                f"ws://{addr}/ws",
                str(BARGE_IN_AT + 1.5),
                str(flood_rate),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert proc.stdout is not None and proc.stdin is not None
            assert (await proc.stdout.readline()).strip() == b"ready"

        def go() -> None:
            if proc is not None and proc.stdin is not None:
                proc.stdin.write(b"go\n")

        try:
            result = await _neighbour_call(addr, server, go)
        finally:
            if proc is not None:
                out, _ = await proc.communicate()
                count, _, end = out.decode().strip().partition(" ")
                result.flood_messages = int(count or 0)
                flooded = [c for c in server.calls if c.call_data["start"]["callSid"].endswith("9")]
                reasons = [c.transport.stats.end_reason if c.transport else None for c in flooded]
                result.flood_end = f"client: {end}, server: {reasons}"
    return result


async def _main(rounds: int, rate: float) -> int:
    quiet: list[Measure] = []
    loud: list[Measure] = []
    for _ in range(rounds):
        quiet.append(await measure(flood_rate=None))
        loud.append(await measure(flood_rate=rate))
        print(f"quiet: {quiet[-1]}\nflood: {loud[-1]}", flush=True)
    q99 = statistics.median(m.gap_p99_ms for m in quiet)
    f99 = statistics.median(m.gap_p99_ms for m in loud)
    qi = statistics.median(m.interrupt_ms for m in quiet)
    fi = statistics.median(m.interrupt_ms for m in loud)
    print(
        f"median over {rounds} rounds: p99 gap {q99:.1f} → {f99:.1f} ms "
        f"({(f99 / q99 - 1) * 100:+.0f}%), interruption {qi:.0f} → {fi:.0f} ms "
        f"({(fi / qi - 1) * 100:+.0f}%)"
    )
    ok = f99 <= q99 * 1.1 and fi <= qi * 1.1
    print("within 10%" if ok else "NOT within 10%")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--rate", type=float, default=900.0, help="garbage messages/s (0: as fast as possible)"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(_main(args.rounds, args.rate)))
