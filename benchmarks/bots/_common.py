"""What both echo bots share (stdlib only: imported under callpipe's and Pipecat's venvs)."""

from __future__ import annotations

import argparse
import os

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
    """Run uvicorn (one process, or ``--workers N`` sharing the socket)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    import uvicorn

    uvicorn.run(
        app_path,
        app_dir=app_dir,
        host=args.host,
        port=args.port,
        workers=args.workers if args.workers > 1 else None,
        log_level="warning",
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        access_log=False,
        backlog=2048,
    )
