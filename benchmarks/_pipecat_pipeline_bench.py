"""Pipecat side of pipeline_bench.py, run under Pipecat's venv. Never imported by callpipe.

Prints one JSON object {case: frames_per_sec}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time

from loguru import logger

logger.remove()
logging.disable(logging.CRITICAL)

from pipecat.frames.frames import (  # noqa: E402
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.runner import PipelineRunner  # noqa: E402
from pipecat.pipeline.task import PipelineParams, PipelineTask  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _pipeline_bench_common import AUDIO, CASES, FRAMES, PROCESSORS  # noqa: E402


class Pass(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Count(FrameProcessor):
    def __init__(self, cls: type, target: int) -> None:
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
    cls = OutputAudioRawFrame if case == "data" else InputAudioRawFrame
    count = Count(cls, frames)
    task = PipelineTask(
        Pipeline([*(Pass() for _ in range(PROCESSORS)), count]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        idle_timeout_secs=None,
        enable_rtvi=False,
        enable_turn_tracking=False,
        check_dangling_tasks=False,
    )
    runner = asyncio.create_task(PipelineRunner(handle_sigint=False).run(task))
    await asyncio.sleep(0.3)
    start = time.perf_counter()
    for _ in range(frames):
        await task.queue_frame(cls(audio=AUDIO, sample_rate=8000, num_channels=1))
    await count.done.wait()
    rate = frames / (time.perf_counter() - start)
    await task.cancel()
    await runner
    return rate


async def main(frames: int) -> None:
    results = {}
    for case in CASES:
        results[case] = max([await one(case, frames) for _ in range(2)])
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else FRAMES))
