"""What both echo bots share (stdlib only: imported under callpipe's and Pipecat's venvs)."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

#: VAD thresholds used by both bots (and told to the load generator).
VAD_CONFIDENCE = 0.7
VAD_START_SECS = 0.2
VAD_STOP_SECS = 0.4
VAD_MIN_VOLUME = 0.6
SAMPLE_RATE = 8000


def echo_audio(buffered: bytearray) -> bytes:
    """The utterance to play back: what was buffered minus the trailing ``stop_secs`` silence."""
    trail = int(VAD_STOP_SECS * SAMPLE_RATE) * 2
    return bytes(buffered[: max(len(buffered) - trail, 0)])


def serve(app_path: str, app_dir: str) -> None:
    """Run uvicorn: one process, or ``--workers N`` processes (see :func:`serve_reuse_port`)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    import uvicorn

    if args.workers > 1:
        serve_reuse_port(app_path, app_dir, args.host, args.port, args.workers)
        return
    uvicorn.run(
        app_path,
        app_dir=app_dir,
        host=args.host,
        port=args.port,
        **UVICORN_OPTIONS,
    )


UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "ws_per_message_deflate": False,
    "ws_ping_interval": None,
    "access_log": False,
    "backlog": 2048,
}


def serve_reuse_port(app_path: str, app_dir: str, host: str, port: int, workers: int) -> None:
    """``workers`` forked uvicorn processes, each listening on its own ``SO_REUSEPORT`` socket
    (Linux spreads connections evenly over them), as ``callpipe run --workers N`` does.

    Not uvicorn's ``--workers``: its processes share one listening socket and whichever wakes
    first accepts the whole burst of waiting connections; 200 benchmark calls split about
    83/119 run after run, and the loaded worker fell behind while the other had room. SIGINT or
    SIGTERM here is passed on to the workers.
    """
    import multiprocessing
    import signal
    import socket
    import sys

    import uvicorn

    def worker() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sys.path.insert(0, app_dir)
        uvicorn.Server(uvicorn.Config(app_path, **UVICORN_OPTIONS)).run(sockets=[sock])

    procs = [multiprocessing.get_context("fork").Process(target=worker) for _ in range(workers)]
    for proc in procs:
        proc.start()

    def forward(sig: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, sig)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for proc in procs:
        proc.join()


# --------------------------------------------------------------------- full-pipeline bots

#: The LLM's reply to every user turn: three sentences (TTS gets them one by one), 18 words.
REPLY = "Sure, I can help with that. We have a table for two at seven tonight. Shall I book it?"
#: Speech per word of the fake Cartesia (18 words: 4.5 s of reply, so callers barge in).
CARTESIA_SECS_PER_WORD = 0.25
#: Speech per character of the fake ElevenLabs, chosen so its replies are as long.
ELEVENLABS_SECS_PER_CHAR = round(CARTESIA_SECS_PER_WORD * len(REPLY.split()) / len(REPLY), 4)
REPLY_SECS = CARTESIA_SECS_PER_WORD * len(REPLY.split())
#: Between streamed LLM tokens (one per word): none, so the time to the first sentence is the
#: fake's time to first byte and nothing of it is counted as the framework's.
LLM_CHUNK_DELAY = 0.0
SYSTEM_PROMPT = "You are a friendly restaurant booking line. Keep answers short."


def fake_urls() -> dict[str, str]:
    """Where the fakes listen (``run.py`` starts them and passes their URLs)."""
    return dict(json.loads(os.environ["BENCH_FAKES"]))


class Probe:
    """Per-call timing records for the framework's share of turn latency.

    ``vad_stop()`` when the bot sees the VAD's "user stopped speaking"; ``ttfb(kind, secs)``
    for the LLM's and TTS's time to first byte as the services measure it. Times are
    ``time.perf_counter()`` (CLOCK_MONOTONIC on Linux, comparable across processes); one JSON
    line per call goes to ``$BENCH_PROBE_DIR/probe-<pid>.jsonl`` when the call ends.
    """

    def __init__(self, call_sid: str) -> None:
        self.call_sid = call_sid
        self.vad_stops: list[float] = []
        self.ttfbs: list[tuple[str, float, float]] = []

    def vad_stop(self) -> None:
        self.vad_stops.append(time.perf_counter())

    def ttfb(self, kind: str, secs: float) -> None:
        self.ttfbs.append((kind, time.perf_counter(), secs))

    def write(self) -> None:
        folder = os.environ.get("BENCH_PROBE_DIR")
        if not folder:
            return
        record = {"call": self.call_sid, "vad_stops": self.vad_stops, "ttfbs": self.ttfbs}
        with open(os.path.join(folder, f"probe-{os.getpid()}.jsonl"), "a") as out:
            out.write(json.dumps(record) + "\n")
