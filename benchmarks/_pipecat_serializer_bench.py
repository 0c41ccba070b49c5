"""Pipecat side of serializer_bench.py, run under /opt/pipecat-venv/bin/python.

Never imported by callpipe.

Prints one JSON object {case: msgs_per_sec}. Same inputs and loop shape as the callpipe side.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from types import SimpleNamespace
from typing import Any

from loguru import logger

logger.remove()
logging.disable(logging.CRITICAL)

from pipecat.frames.frames import OutputAudioRawFrame  # noqa: E402
from pipecat.serializers.twilio import TwilioFrameSerializer  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _bench_inputs import media_message, pcm_chunk  # noqa: E402


async def _rate(fn: Any, arg_factory: Any, seconds: float) -> float:
    """Best of 5 runs of ``seconds / 5`` each, like the callpipe side."""
    args = [arg_factory() for _ in range(64)]
    best = 0.0
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while True:
            for a in args:
                await fn(a)
            n += len(args)
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


async def main(seconds: float) -> None:
    results: dict[str, float] = {}
    for rate in (8000, 16000):
        ser = TwilioFrameSerializer(
            "MZ0123456789abcdef0123456789abcdef",
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        await ser.setup(SimpleNamespace(audio_in_sample_rate=rate, audio_out_sample_rate=rate))
        msg = media_message()
        results[f"deserialize_media_pipeline_{rate}"] = await _rate(
            ser.deserialize, lambda msg=msg: msg, seconds
        )
        pcm = pcm_chunk(rate)
        results[f"serialize_media_from_{rate}"] = await _rate(
            ser.serialize,
            lambda pcm=pcm, rate=rate: OutputAudioRawFrame(
                audio=pcm, sample_rate=rate, num_channels=1
            ),
            seconds,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0))
