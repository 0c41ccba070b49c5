"""Audio microbenchmark: G.711, stream resampling and Silero VAD, callpipe vs pipecat-ai 1.14.

Run: ``.venv/bin/python benchmarks/audio_bench.py [--seconds S] [--calls 1,10,50,100]``.
The callpipe side runs here; the Pipecat side runs ``_pipecat_audio_bench.py`` under
/opt/pipecat-venv (Pipecat is never imported by callpipe). Same inputs, same loop shapes
(``_audio_bench_common.py``), one process, measured in the same run.

- Codec: μ-law decode then encode (Pipecat: ``ulaw_to_pcm``/``pcm_to_ulaw`` at 8→8 kHz, i.e.
  ``audioop`` behind an async call), MB of μ-law per second, per 20 ms packet and on 1 MiB.
- Resampler: CPU per second of audio fed as 20 ms chunks (Pipecat: ``SOXRStreamAudioResampler``,
  VHQ), and the largest single output (burst) in ms for a 20 ms input.
- VAD: CPU (process time, so executor threads count) per call per 20 ms of 8 kHz audio when N
  calls feed speech in lock-step; callpipe per call and batched (``shared=True``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _audio_bench_common import (  # noqa: E402
    BULK_BYTES,
    PACKET_BYTES,
    RESAMPLE_PAIRS,
    VAD_CALLS,
    best_rate,
    noise_pcm,
    vad_cpu_per_window,
)
from callpipe.audio import g711  # noqa: E402
from callpipe.audio.resample import StreamResampler, resample_once  # noqa: E402
from callpipe.audio.vad.silero import SileroBatchEngine, SileroVADAnalyzer  # noqa: E402

PIPECAT_PYTHON = "/opt/pipecat-venv/bin/python"
FIXTURES = HERE.parent / "tests" / "fixtures" / "audio"


def call_audio() -> bytes:
    """~6 s of a phone leg: the speech fixtures between silences, 8 kHz through μ-law."""
    rng = np.random.default_rng(0)
    parts = []
    for wav_path in sorted(FIXTURES.glob("*_16k.wav")):
        with wave.open(str(wav_path), "rb") as reader:
            parts.append(np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2"))
        parts.append(np.rint(rng.standard_normal(8000) * 10).astype("<i2"))
    pcm = resample_once(np.concatenate(parts).tobytes(), 16000, 8000)
    return g711.ulaw_to_pcm(g711.pcm_to_ulaw(pcm))


def codec_rates(seconds: float) -> dict[str, float]:
    out = {}
    for label, size in (("packet", PACKET_BYTES), ("bulk", BULK_BYTES)):
        ulaw = bytes(range(256)) * (size // 256) if size >= 256 else bytes(range(size))
        rate = best_rate(
            lambda u=ulaw: g711.pcm_to_ulaw(g711.ulaw_to_pcm(u)),
            seconds if size < BULK_BYTES else seconds / 2,
        )
        out[label] = rate * size / 1e6
    return out


def resample_costs(seconds: float) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    cost, burst, latency = {}, {}, {}
    for in_rate, out_rate in RESAMPLE_PAIRS:
        key = f"{in_rate}->{out_rate}"
        chunk = noise_pcm(in_rate, 0.02)
        resampler = StreamResampler(in_rate, out_rate, clear_after_secs=None)
        per_sec = best_rate(lambda r=resampler, c=chunk: r.resample(c), seconds)
        cost[key] = 50e6 / per_sec  # 50 chunks of 20 ms make one second of audio
        fresh = StreamResampler(in_rate, out_rate)
        burst[key] = max(len(fresh.resample(chunk)) // 2 for _ in range(50)) / out_rate * 1000
        latency[key] = fresh.latency_secs * 1000
    return cost, burst, latency


async def vad_costs(audio: bytes, calls: list[int], shared: bool) -> dict[str, float]:
    out = {}
    for n in calls:
        analyzers = [SileroVADAnalyzer(shared=shared) for _ in range(n)]
        for a in analyzers:
            a.set_sample_rate(8000)
        await vad_cpu_per_window(analyzers, audio[: 8000 * 2], 320)  # warm-up
        cpu, _wall = await vad_cpu_per_window(analyzers, audio, 320)
        out[str(n)] = cpu
    if shared:
        engine = SileroBatchEngine.for_running_loop()
        out["mean_batch"] = engine.rows_scored / max(1, engine.batches_run)
    return out


def pipecat_side(
    seconds: float, audio: bytes, calls: list[int]
) -> dict[str, dict[str, float]] | None:
    if not Path(PIPECAT_PYTHON).exists():
        print(f"(no {PIPECAT_PYTHON}: Pipecat side skipped)")
        return None
    with tempfile.NamedTemporaryFile(suffix=".pcm") as f:
        f.write(audio)
        f.flush()
        proc = subprocess.run(
            [
                PIPECAT_PYTHON,
                str(HERE / "_pipecat_audio_bench.py"),
                str(seconds),
                f.name,
                ",".join(map(str, calls)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        print("Pipecat side failed:\n" + proc.stderr[-2000:])
        return None
    result: dict[str, dict[str, float]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:6.2f}x" if b else "     -"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per case")
    parser.add_argument("--calls", default=",".join(map(str, VAD_CALLS)))
    args = parser.parse_args()
    calls = [int(x) for x in args.calls.split(",")]
    audio = call_audio()

    # The machine may be shared: time callpipe's microbenchmarks before and after Pipecat's
    # and keep the better run, so both sides get a chance at a quiet moment.
    codec = codec_rates(args.seconds)
    cost, burst, latency = resample_costs(args.seconds)
    pc = pipecat_side(args.seconds, audio, calls) or {}
    pc_again = pipecat_side(args.seconds, audio, []) or {}  # microbenchmarks only
    for key, better in (("codec", max), ("resample", min)):
        for case, value in pc_again.get(key, {}).items():
            pc[key][case] = better(value, pc[key].get(case, value))
    codec = {k: max(v, codec[k]) for k, v in codec_rates(args.seconds).items()}
    cost = {k: min(v, cost[k]) for k, v in resample_costs(args.seconds)[0].items()}
    vad_per_call = asyncio.run(vad_costs(audio, calls, shared=False))
    vad_shared = asyncio.run(vad_costs(audio, calls, shared=True))

    print("\nμ-law decode+encode (MB of μ-law per second; higher is better)")
    print(f"{'case':<22}{'callpipe':>12}{'pipecat':>12}{'callpipe/pipecat':>18}")
    for label in ("packet", "bulk"):
        p = pc.get("codec", {}).get(label)
        name = "20 ms packet (160 B)" if label == "packet" else "bulk (1 MiB)"
        print(f"{name:<22}{codec[label]:>12.1f}{p or 0:>12.1f}{_ratio(codec[label], p):>18}")

    print("\nStream resampler, 20 ms chunks (µs CPU per second of audio; lower is better)")
    print(
        f"{'pair':<14}{'callpipe':>10}{'pipecat':>10}{'pipecat/callpipe':>18}"
        f"{'max burst ms (cp / pc)':>26}{'held ms (cp)':>14}"
    )
    for key in cost:
        p = pc.get("resample", {}).get(key)
        pb = pc.get("burst", {}).get(key, float("nan"))
        speed = _ratio(p, cost[key]) if p else "     -"
        print(
            f"{key:<14}{cost[key]:>10.0f}{p or 0:>10.0f}{speed:>18}"
            f"{burst[key]:>15.1f} / {pb:<8.1f}{latency[key]:>14.1f}"
        )

    print("\nSilero VAD, 8 kHz, CPU µs per call per 20 ms of audio (lower is better)")
    print(
        f"{'calls':<8}{'callpipe':>10}{'batched':>10}{'pipecat':>10}"
        f"{'pipecat/callpipe':>18}{'pipecat/batched':>17}"
    )
    for n in calls:
        p = pc.get("vad", {}).get(str(n))
        a, b = vad_per_call[str(n)], vad_shared[str(n)]
        print(
            f"{n:<8}{a:>10.1f}{b:>10.1f}{p or 0:>10.1f}{_ratio(p, a) if p else '     -':>18}"
            f"{_ratio(p, b) if p else '     -':>17}"
        )
    print(f"(mean batch size over the batched runs: {vad_shared['mean_batch']:.1f} rows)")


if __name__ == "__main__":
    main()
