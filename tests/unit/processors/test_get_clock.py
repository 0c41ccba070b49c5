"""FrameProcessor.get_clock(): Pipecat's integer-nanosecond reading of the pipeline clock."""

from __future__ import annotations

from callpipe.clocks.system_clock import SystemClock
from callpipe.processors.frame_processor import FrameProcessor, FrameProcessorSetup


class FixedClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        return None

    async def sleep(self, seconds: float) -> None:
        return None


async def test_get_clock_reads_the_pipeline_clock_in_nanoseconds() -> None:
    clock = FixedClock(12.5)
    processor = FrameProcessor()
    await processor.setup(FrameProcessorSetup(clock=clock))
    reading = processor.get_clock()
    assert reading.get_time() == 12_500_000_000
    clock.t = 13.0
    assert reading.get_time() == 13_000_000_000  # a live view, not a snapshot


async def test_a_system_clock_is_read_on_the_pipeline_scale_too() -> None:
    clock = SystemClock()  # never start()ed by the worker: its own get_time() stays 0
    processor = FrameProcessor()
    await processor.setup(FrameProcessorSetup(clock=clock))
    assert abs(processor.get_clock().get_time() - clock.now() * 1e9) < 1e8
