"""Pipecat side of serializer_bench.py, run under /opt/pipecat-venv/bin/python.

Never imported by callpipe.

Prints one JSON object {case: msgs_per_sec}. Same inputs and loop shape as the callpipe side.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from types import SimpleNamespace

from loguru import logger

logger.remove()
logging.disable(logging.CRITICAL)

from pipecat.frames.frames import OutputAudioRawFrame  # noqa: E402
from pipecat.serializers.twilio import TwilioFrameSerializer  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _bench_inputs import media_message, pcm_chunk, rate  # noqa: E402


async def main(seconds: float) -> None:
    results: dict[str, float] = {}
    for sample_rate in (8000, 16000):
        ser = TwilioFrameSerializer(
            "MZ0123456789abcdef0123456789abcdef",
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        await ser.setup(
            SimpleNamespace(audio_in_sample_rate=sample_rate, audio_out_sample_rate=sample_rate)
        )
        msg = media_message()
        results[f"deserialize_media_pipeline_{sample_rate}"] = await rate(
            ser.deserialize, [msg] * 64, seconds
        )
        pcm = pcm_chunk(sample_rate)
        frames = [
            OutputAudioRawFrame(audio=pcm, sample_rate=sample_rate, num_channels=1)
            for _ in range(64)
        ]
        results[f"serialize_media_from_{sample_rate}"] = await rate(ser.serialize, frames, seconds)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0))
