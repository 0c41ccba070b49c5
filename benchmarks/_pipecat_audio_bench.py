"""Pipecat side of audio_bench.py, run under /opt/pipecat-venv/bin/python. Prints one JSON object.

Never imported by callpipe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

from loguru import logger

logger.remove()
logging.disable(logging.CRITICAL)

from pipecat.audio.resamplers.soxr_stream_resampler import SOXRStreamAudioResampler  # noqa: E402
from pipecat.audio.utils import pcm_to_ulaw, ulaw_to_pcm  # noqa: E402
from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _audio_bench_common import (  # noqa: E402
    BULK_BYTES,
    PACKET_BYTES,
    RESAMPLE_PAIRS,
    best_rate_async,
    noise_pcm,
    vad_cpu_per_window,
)


async def main(seconds: float, vad_audio_path: str, calls: list[int]) -> None:
    results: dict[str, dict[str, float]] = {"codec": {}, "resample": {}, "burst": {}, "vad": {}}
    passthrough = SOXRStreamAudioResampler()  # same rate in and out: codec only
    for label, size in (("packet", PACKET_BYTES), ("bulk", BULK_BYTES)):
        ulaw = bytes(range(256)) * (size // 256) if size >= 256 else bytes(range(size))

        async def round_trip(data: bytes = ulaw) -> None:
            pcm = await ulaw_to_pcm(data, 8000, 8000, passthrough)
            await pcm_to_ulaw(pcm, 8000, 8000, passthrough)

        rate = await best_rate_async(round_trip, seconds if size < BULK_BYTES else seconds / 2)
        results["codec"][label] = rate * size / 1e6  # μ-law MB through decode + encode per second

    for in_rate, out_rate in RESAMPLE_PAIRS:
        chunk = noise_pcm(in_rate, 0.02)
        resampler = SOXRStreamAudioResampler()

        async def step(
            r: SOXRStreamAudioResampler = resampler,
            c: bytes = chunk,
            i: int = in_rate,
            o: int = out_rate,
        ) -> None:
            await r.resample(c, i, o)

        per_sec = await best_rate_async(step, seconds)  # 20 ms chunks per second
        results["resample"][f"{in_rate}->{out_rate}"] = 50e6 / per_sec  # µs per audio second
        fresh = SOXRStreamAudioResampler(clear_after_secs=None)
        sizes = [len(await fresh.resample(chunk, in_rate, out_rate)) // 2 for _ in range(50)]
        results["burst"][f"{in_rate}->{out_rate}"] = max(sizes) / out_rate * 1000  # ms

    audio = Path(vad_audio_path).read_bytes()  # noqa: ASYNC240 - tiny file, before timing
    for n in calls:
        analyzers = [SileroVADAnalyzer(sample_rate=8000) for _ in range(n)]
        for a in analyzers:
            a.set_sample_rate(8000)
        await vad_cpu_per_window(analyzers, audio[: 8000 * 2], 320)  # warm-up
        cpu, _wall = await vad_cpu_per_window(analyzers, audio, 320)
        results["vad"][str(n)] = cpu
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(
        main(float(sys.argv[1]), sys.argv[2], [int(x) for x in sys.argv[3].split(",") if x])
    )
