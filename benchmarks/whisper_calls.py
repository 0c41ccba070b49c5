"""The understanding demo under load: N simultaneous calls, each with local Whisper STT.

The server is ``callpipe demo`` (Silero VAD + faster-whisper tiny.en int8 + eSpeak NG, local
mode) in its own process; the callers are ``loadgen.py`` (real eSpeak speech over Twilio's media
protocol, 20 ms real-time packets, a third of the utterances barging in). Every caller utterance
is transcribed by the one shared Whisper engine of the process, on its worker threads, so the
questions are: does the event loop stay free (outbound gap p99 within the transport's bound,
no dropouts), and up to how many calls does the turn latency stay under 1.5 s?

    .venv/bin/python benchmarks/whisper_calls.py --calls 1,5,10,20 --duration 30

Prints one table row per N; ``--out`` keeps the raw JSON. Not a test: timings depend on the host.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench


class DemoServer(bench.Server):
    """``callpipe demo`` on a free port (local mode, no session timeout)."""

    def __init__(self, log: Path, workers: int) -> None:
        self.port = bench.free_port()
        cmd = [
            sys.executable, "-m", "callpipe.demo", "--host", "127.0.0.1", "--port", str(self.port),
            "--session-timeout", "0",
        ]  # fmt: skip
        self.log = log.open("w")
        env = dict(os.environ, PYTHONUNBUFFERED="1", CALLPIPE_WHISPER_WORKERS=str(workers))
        env.pop("OPENAI_BASE_URL", None)  # the offline script, not an LLM
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=str(bench.ROOT)
        )
        self.workers = 1
        self.url = f"ws://127.0.0.1:{self.port}/ws"

    def whisper_stats(self) -> dict[str, float]:
        """Real-time factor and overload count from the server's /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()

        def value(pattern: str) -> float:
            found = re.findall(pattern + r"(?:\{[^}]*\})? ([0-9.e+-]+)", text)
            return sum(float(v) for v in found)

        count = value("callpipe_stt_realtime_factor_count")
        return {
            "utterances_transcribed": count,
            "rtf_mean": value("callpipe_stt_realtime_factor_sum") / count if count else 0.0,
            "overload_skips": value("callpipe_stt_overload_total"),
        }


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_n(calls: int, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    tag = f"whisper-n{calls}"
    server = DemoServer(out_dir / f"{tag}.server.log", args.whisper_workers)
    try:
        server.wait_ready(timeout=120)
        time.sleep(1.0)
        docs, info = bench.run_generators(
            server.url, calls, args.duration, args.seed, out_dir, tag, server
        )
        whisper = server.whisper_stats()
    finally:
        server.stop()
    raw = bench.merge(docs)
    latencies = [lat for _, lat in raw.get("latencies", [])]
    call_secs = raw.get("call_secs", 0.0) or 1.0
    result = {
        "calls": calls,
        "utterances": raw.get("utterances", 0),
        "answered": raw.get("answered", 0),
        "latency_p50": statistics.median(latencies) if latencies else float("nan"),
        "latency_p95": pct(latencies, 0.95),
        "under_1_5s": sum(lat < 1.5 for lat in latencies) / len(latencies) if latencies else 0.0,
        "gap_p99_ms": pct(raw.get("gaps", []), 0.99) * 1000,
        "dropouts": raw.get("dropouts", 0),
        "cpu_per_call_sec": info["server_cpu_secs"] / call_secs,
        "rss_peak_mib": info["rss_peak"] / 2**20,
        **whisper,
    }
    (out_dir / f"{tag}.json").write_text(json.dumps({**result, "raw": raw, "server": info}))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--calls", default="1,5,10,20")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of audio per call")
    parser.add_argument("--whisper-workers", type=int, default=2, help="parallel transcriptions")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(bench.HERE / "results" / "whisper"))
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        "| calls | answered | turn latency p50 / p95 s | < 1.5 s | gap p99 ms | dropouts "
        "| CPU s per call-s | Whisper RTF | skipped |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.calls.split(",")):
        r = bench_n(n, args, out_dir)
        print(
            f"| {n} | {r['answered']}/{r['utterances']} | {r['latency_p50']:.2f} / "
            f"{r['latency_p95']:.2f} | {r['under_1_5s']:.0%} | {r['gap_p99_ms']:.0f} "
            f"| {r['dropouts']} | {r['cpu_per_call_sec']:.3f} | {r['rtf_mean']:.2f} "
            f"| {r['overload_skips']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
