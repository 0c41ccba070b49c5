"""Pipeline: processors linked in a line, usable wherever a processor is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from callpipe.frames.frames import Frame
from callpipe.processors.frame_processor import (
    FrameDirection,
    FrameProcessor,
    FrameProcessorSetup,
    cleanup_processor,
    setup_processor,
)

PushCallback = Callable[[Frame, FrameDirection], Awaitable[None]]


class PipelineSource(FrameProcessor):
    """Entry of a pipeline: passes frames down; frames leaving upstream go to ``upstream``."""

    direct = True

    def __init__(self, upstream: PushCallback, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._upstream = upstream

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if direction is FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
        else:
            await self._upstream(frame, direction)


class PipelineSink(FrameProcessor):
    """Exit of a pipeline: passes frames up; frames leaving downstream go to ``downstream``."""

    direct = True

    def __init__(self, downstream: PushCallback, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._downstream = downstream

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if direction is FrameDirection.UPSTREAM:
            await self.push_frame(frame, direction)
        else:
            await self._downstream(frame, direction)


class Pipeline(FrameProcessor):
    """A line of processors. Frames entering it downstream go to the first one; frames leaving
    the last one continue to whatever follows the pipeline (and likewise upstream)."""

    direct = True

    def __init__(self, processors: Sequence[FrameProcessor], *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._source = PipelineSource(self.push_frame, name=f"{self.name}::Source")
        self._sink = PipelineSink(self.push_frame, name=f"{self.name}::Sink")
        self._processors = list(processors)
        chain: list[FrameProcessor] = [self._source, *self._processors, self._sink]
        for left, right in zip(chain, chain[1:], strict=False):
            left.link(right)

    @property
    def processors(self) -> list[FrameProcessor]:
        return list(self._processors)

    def processors_with_children(self) -> list[FrameProcessor]:
        result: list[FrameProcessor] = [self, self._source]
        for processor in self._processors:
            result.extend(processor.processors_with_children())
        result.append(self._sink)
        return result

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        for processor in (self._source, *self._processors, self._sink):
            await setup_processor(processor, setup)

    async def cleanup(self) -> None:
        for processor in (self._source, *self._processors, self._sink):
            await cleanup_processor(processor)
        await super().cleanup()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if direction is FrameDirection.DOWNSTREAM:
            await self._source.queue_frame(frame, direction)
        else:
            await self._sink.queue_frame(frame, direction)
