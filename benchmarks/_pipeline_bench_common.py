"""Shape of pipeline_bench.py, shared by both sides (stdlib only: runs in either venv)."""

from __future__ import annotations

PROCESSORS = 10
FRAMES = 20_000
AUDIO = bytes(320)  # 20 ms of 8 kHz PCM16
CASES = ("data", "system")  # OutputAudioRawFrame (queued per processor) / InputAudioRawFrame
