"""Serializer microbenchmark: Twilio media deserialize/serialize, callpipe vs pipecat-ai.

Run: ``.venv/bin/python benchmarks/serializer_bench.py [seconds-per-case] [rounds]``. The
callpipe side runs here; the Pipecat side runs ``_pipecat_serializer_bench.py`` under
/opt/pipecat-venv (Pipecat is never imported by callpipe). Both use the same inputs
(``_bench_inputs.py``) and loop shape: one core, one serializer, ``await`` per message,
messages/second; the stacks alternate for a few rounds and each case keeps its best.

Cases: inbound media (160 µ-law bytes, Twilio's compact JSON) into an 8 kHz and a 16 kHz pipeline,
and outbound 20 ms PCM16 chunks at 8 kHz (no resampling) and 16 kHz (resampled to 8 kHz).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _bench_inputs import STREAM_SID, media_message, pcm_chunk, rate  # noqa: E402
from callpipe.frames.frames import OutputAudioRawFrame, StartFrame  # noqa: E402
from callpipe.serializers.twilio import TwilioFrameSerializer  # noqa: E402

PIPECAT_PYTHON = "/opt/pipecat-venv/bin/python"


async def callpipe_rates(seconds: float) -> dict[str, float]:
    results: dict[str, float] = {}
    for sample_rate in (8000, 16000):
        ser = TwilioFrameSerializer(
            STREAM_SID, params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
        )
        await ser.setup(
            StartFrame(audio_in_sample_rate=sample_rate, audio_out_sample_rate=sample_rate)
        )
        msg = media_message()
        assert await ser.deserialize(msg) is not None or sample_rate != 8000
        results[f"deserialize_media_pipeline_{sample_rate}"] = await rate(
            ser.deserialize, [msg] * 64, seconds
        )
        pcm = pcm_chunk(sample_rate)
        frames = [OutputAudioRawFrame(audio=pcm, sample_rate=sample_rate) for _ in range(64)]
        results[f"serialize_media_from_{sample_rate}"] = await rate(ser.serialize, frames, seconds)
        assert not ser.malformed_counts
    return results


def pipecat_rates(seconds: float) -> dict[str, float] | None:
    if not Path(PIPECAT_PYTHON).exists():
        return None
    proc = subprocess.run(
        [PIPECAT_PYTHON, str(HERE / "_pipecat_serializer_bench.py"), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    last = proc.stdout.strip().splitlines()[-1]
    result: dict[str, float] = json.loads(last)
    return result


def main() -> None:
    logging.disable(logging.WARNING)
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    # The host's speed drifts over seconds: alternate the two stacks for a few rounds and keep
    # each case's best, so neither side is measured only in a slow stretch.
    ours: dict[str, float] = {}
    theirs: dict[str, float] | None = {}
    for _ in range(rounds):
        for case, value in asyncio.run(callpipe_rates(seconds)).items():
            ours[case] = max(value, ours.get(case, 0.0))
        other = pipecat_rates(seconds)
        if other is None or theirs is None:
            theirs = None
            continue
        for case, value in other.items():
            theirs[case] = max(value, theirs.get(case, 0.0))
    print(f"{'case':36} {'callpipe msg/s':>15} {'pipecat msg/s':>15} {'ratio':>7}")
    for case, value in ours.items():
        other = theirs.get(case) if theirs else None
        ratio = f"{value / other:6.2f}x" if other else "   n/a"
        other_s = f"{other:15,.0f}" if other else f"{'n/a':>15}"
        print(f"{case:36} {value:15,.0f} {other_s} {ratio}")


if __name__ == "__main__":
    main()
