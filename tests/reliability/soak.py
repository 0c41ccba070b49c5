"""Soak: many sequential calls, then many concurrent calls for minutes; the server must not grow.

The server (the runner app serving the reliability echo bot) runs in a subprocess and reports
its own RSS, open file descriptors, asyncio tasks, threads and live calls on ``GET /soak-stats``;
this process drives the calls (Twilio dialect, real-time audio) and samples the server.

    .venv/bin/python tests/reliability/soak.py --sequential 1000 --concurrent 50 --minutes 10
    .venv/bin/python tests/reliability/soak.py --sequential 200 --minutes 2 --csv soak.csv

Calls end every way a call can: the caller stops the stream, closes, or drops the TCP
connection; the bot says goodbye and ends; some calls send bad messages first. Exit status 1 if
a bound is exceeded (RSS growth, fds/tasks/threads not back to the baseline). ``pytest -m soak``
runs the full-size soak; ``test_soak.py`` runs a tiny one in the normal suite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from reliability.helpers import BotServer, Caller, tone
else:
    from .helpers import BotServer, Caller, tone


# ------------------------------------------------------------------------------------ server


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def serve_main(port_file: str) -> None:
    """Subprocess entry: run the runner app with the echo bot; write the port to a file."""
    import uvicorn
    from fastapi.responses import JSONResponse

    from callpipe.runner.app import Credentials, RunnerConfig, create_app

    if __package__ in (None, ""):
        from reliability.runner_helpers import RunnerBot
    else:
        from .runner_helpers import RunnerBot

    server = BotServer()
    bot = RunnerBot(server)
    app = create_app(
        bot, RunnerConfig(transport="twilio", insecure=True), credentials=Credentials()
    )

    @app.get("/soak-stats")
    async def stats() -> JSONResponse:
        server.calls[:] = [c for c in server.calls if not c.done.is_set()]  # keep no history
        gc.collect()
        return JSONResponse(
            {
                "rss_mb": round(_rss_mb(), 2),
                "fds": _fds(),
                "tasks": len(asyncio.all_tasks()),
                "threads": threading.active_count(),
                "active_calls": len(server.calls),
                "gc_objects": len(gc.get_objects()),
            }
        )

    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    Path(port_file).write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


# ------------------------------------------------------------------------------------ driver


@dataclass
class Sample:
    phase: str
    t: float
    calls_done: int
    rss_mb: float
    fds: int
    tasks: int
    threads: int
    active_calls: int
    gc_objects: int


class Soak:
    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.samples: list[Sample] = []
        self.calls_done = 0
        self.failures = 0
        self.t0 = time.monotonic()
        self.http = httpx.AsyncClient(base_url=f"http://{addr}", timeout=10)

    async def sample(self, phase: str, *, settle: bool = False) -> Sample:
        if settle:  # wait until the server has no call left
            for _ in range(100):
                s = (await self.http.get("/soak-stats")).json()
                if s["active_calls"] == 0:
                    break
                await asyncio.sleep(0.1)
        s = (await self.http.get("/soak-stats")).json()
        sample = Sample(phase, round(time.monotonic() - self.t0, 1), self.calls_done, **s)
        self.samples.append(sample)
        print(
            f"{sample.phase:>10} t={sample.t:6.1f}s calls={sample.calls_done:5d} "
            f"rss={sample.rss_mb:7.1f}MB fds={sample.fds:4d} tasks={sample.tasks:4d} "
            f"threads={sample.threads:3d} live={sample.active_calls:3d} "
            f"objects={sample.gc_objects}",
            flush=True,
        )
        return sample

    async def one_call(self, n: int, secs: float, rng: random.Random) -> None:
        """One call of ``secs`` of caller audio, ended one of five ways."""
        ending = rng.choice(["stop", "close", "abort", "bot_ends", "garbage_then_stop"])
        try:
            caller = Caller(f"ws://{self.addr}/ws", n)
            await caller.connect()
            if ending == "garbage_then_stop":
                for bad in ("{", "[1]", '{"event":"media","media":{"payload":"!"}}', b"\x00"):
                    await caller.send_raw(bad)
            speech = tone(min(secs, 0.4), amp=6000)
            await caller.send_audio(speech + bytes(int(max(0.0, secs - 0.4) * 8000) * 2))
            await caller.press("4")
            if ending in ("stop", "garbage_then_stop"):
                await caller.stop()
                await asyncio.wait_for(caller.closed.wait(), 10)
            elif ending == "bot_ends":
                await caller.press("0")
                await asyncio.wait_for(caller.closed.wait(), 10)
            elif ending == "abort":
                caller.abort()
            await caller.close()
            if not caller.received:
                raise RuntimeError("no audio came back")
        except Exception as exc:
            self.failures += 1
            print(f"call {n} ({ending}) failed: {exc!r}", flush=True)
        finally:
            self.calls_done += 1

    async def sequential(self, count: int, every: int) -> None:
        rng = random.Random(1)
        for i in range(count):
            await self.one_call(i + 1, 0.3, rng)
            if (i + 1) % every == 0:
                await self.sample("sequential", settle=True)

    async def concurrent(self, calls: int, minutes: float, every: float) -> None:
        rng = random.Random(2)
        end = time.monotonic() + minutes * 60
        counter = 100_000

        async def lane() -> None:
            nonlocal counter
            while time.monotonic() < end:
                counter += 1
                secs = min(rng.uniform(5, 20), max(0.5, end - time.monotonic()))
                await self.one_call(counter, secs, rng)

        lanes = [asyncio.create_task(lane()) for _ in range(calls)]
        while time.monotonic() < end:
            await asyncio.sleep(min(every, max(0.0, end - time.monotonic())))
            await self.sample("concurrent")
        await asyncio.gather(*lanes)
        await self.sample("after", settle=True)


def check(samples: list[Sample], rss_bound_mb: float) -> list[str]:
    """Growth between the first settled sample after warm-up and the last settled one."""
    settled = [s for s in samples if s.phase in ("sequential", "after")]
    if len(settled) < 2:
        return []
    first, last = settled[min(1, len(settled) - 2)], settled[-1]  # skip the warm-up sample
    problems = []
    if last.rss_mb - first.rss_mb > rss_bound_mb:
        problems.append(f"RSS grew {last.rss_mb - first.rss_mb:.1f} MB (bound {rss_bound_mb})")
    for name in ("fds", "tasks", "threads"):
        a, b = getattr(first, name), getattr(last, name)
        if b > a:
            problems.append(f"{name} grew from {a} to {b}")
    if last.active_calls:
        problems.append(f"{last.active_calls} calls still live after the soak")
    return problems


async def drive(addr: str, args: argparse.Namespace) -> Soak:
    soak = Soak(addr)
    await soak.sample("start")
    if args.sequential:
        await soak.sequential(args.sequential, max(1, args.sequential // 10))
    if args.minutes and args.concurrent:
        await soak.concurrent(args.concurrent, args.minutes, args.sample_every)
    await soak.http.aclose()
    return soak


def run(args: argparse.Namespace) -> int:
    """Start the server subprocess, drive the calls, report; 1 if a bound was exceeded."""
    port_file = Path(f"/tmp/callpipe-soak-{os.getpid()}.port")
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)])
    try:
        for _ in range(400):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        time.sleep(0.3)
        soak = asyncio.run(drive(f"127.0.0.1:{port_file.read_text()}", args))
    finally:
        proc.terminate()
        proc.wait(10)
        port_file.unlink(missing_ok=True)
    if args.csv:
        with open(args.csv, "w") as f:
            f.write(",".join(asdict(soak.samples[0])) + "\n")
            for sample in soak.samples:
                f.write(",".join(str(v) for v in asdict(sample).values()) + "\n")
    problems = check(soak.samples, args.rss_bound_mb)
    if soak.failures:
        problems.append(f"{soak.failures} of {soak.calls_done} calls failed")
    print(json.dumps({"calls": soak.calls_done, "failures": soak.failures, "problems": problems}))
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="callpipe soak test")
    parser.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    parser.add_argument("--sequential", type=int, default=1000)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument("--rss-bound-mb", type=float, default=20.0)
    parser.add_argument("--csv", help="write the samples (the curves) to this file")
    args = parser.parse_args(argv)
    if args.serve:
        serve_main(args.serve)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
