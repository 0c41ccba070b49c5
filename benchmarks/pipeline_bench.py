"""Per-frame overhead of a 10-processor pipeline: frames/second, callpipe vs pipecat-ai 1.14.

Run: ``.venv/bin/python benchmarks/pipeline_bench.py [--frames N]``. Ten pass-through processors
and a counter; frames are queued on the task and timed until the counter has seen them all:
``data`` = OutputAudioRawFrame (ordered, through every processor's queue), ``system`` =
InputAudioRawFrame (processed inline in callpipe). The Pipecat side runs
``_pipecat_pipeline_bench.py`` under Pipecat's venv (``--pipecat-python``, default
/opt/pipecat-venv/bin/python). One process each, same machine, same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _pipeline_bench_common import AUDIO, CASES, FRAMES, PROCESSORS  # noqa: E402
from callpipe.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame  # noqa: E402
from callpipe.pipeline.pipeline import Pipeline  # noqa: E402
from callpipe.pipeline.runner import PipelineRunner  # noqa: E402
from callpipe.pipeline.task import PipelineParams, PipelineTask  # noqa: E402
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402


class Pass(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Count(FrameProcessor):
    def __init__(self, cls: type[Frame], target: int) -> None:
        super().__init__()
        self.cls = cls
        self.target = target
        self.n = 0
        self.done = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, self.cls):
            self.n += 1
            if self.n == self.target:
                self.done.set()
        await self.push_frame(frame, direction)


async def one(case: str, frames: int) -> float:
    cls: type[Frame] = OutputAudioRawFrame if case == "data" else InputAudioRawFrame
    count = Count(cls, frames)
    task = PipelineTask(
        Pipeline([*(Pass() for _ in range(PROCESSORS)), count]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        idle_timeout_secs=None,
    )
    runner = asyncio.create_task(PipelineRunner(handle_sigint=False).run(task))
    await asyncio.sleep(0.3)
    start = time.perf_counter()
    for _ in range(frames):
        await task.queue_frame(cls(audio=AUDIO, sample_rate=8000, num_channels=1))  # type: ignore[call-arg]
    await count.done.wait()
    rate = frames / (time.perf_counter() - start)
    await task.cancel()
    await runner
    return rate


async def callpipe_side(frames: int) -> dict[str, float]:
    return {case: max([await one(case, frames) for _ in range(2)]) for case in CASES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--pipecat-python", default="/opt/pipecat-venv/bin/python")
    args = parser.parse_args()
    ours = asyncio.run(callpipe_side(args.frames))
    theirs: dict[str, float] = {}
    if Path(args.pipecat_python).exists():
        out = subprocess.run(
            [args.pipecat_python, str(HERE / "_pipecat_pipeline_bench.py"), str(args.frames)],
            capture_output=True,
            text=True,
            check=True,
        )
        theirs = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{PROCESSORS}-processor pipeline, {args.frames} frames, {time.strftime('%Y-%m-%d')}")
    print(f"{'case':8s} {'callpipe fps':>14s} {'pipecat fps':>14s} {'ratio':>7s}")
    for case in CASES:
        pc = theirs.get(case)
        ratio = f"{ours[case] / pc:6.1f}×" if pc else "     –"
        pcs = f"{pc:14,.0f}" if pc else f"{'–':>14s}"
        print(f"{case:8s} {ours[case]:14,.0f} {pcs} {ratio}")


if __name__ == "__main__":
    main()
