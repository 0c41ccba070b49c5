"""ParallelPipeline: the same frames through several branches, merged at the end."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import CancelFrame, EndFrame, Frame, StartFrame, StopFrame
from callpipe.pipeline.pipeline import Pipeline, PipelineSink, PipelineSource
from callpipe.processors.frame_processor import (
    FrameDirection,
    FrameProcessor,
    FrameProcessorSetup,
    cleanup_processor,
    setup_processor,
)

_SEEN_LIMIT = 4096
_SYNC_FRAMES = (StartFrame, EndFrame, CancelFrame, StopFrame)


class ParallelPipeline(FrameProcessor):
    """Runs each argument (a list of processors) as a branch.

    A frame that passes through several branches unchanged leaves once. Lifecycle frames
    (start, end, cancel, stop) leave only after every branch has passed them, so an EndFrame
    means all branches are done. Frames a branch pushes downstream while the StartFrame is
    still held (a greeting pushed on start) wait and leave right after it: nothing after the
    ParallelPipeline ever sees a frame before its StartFrame.
    """

    direct = True

    def __init__(self, *branches: Sequence[FrameProcessor], name: str | None = None) -> None:
        super().__init__(name=name)
        if not branches:
            raise ConfigurationError("ParallelPipeline needs at least one branch")
        self._branches: list[Pipeline] = []
        self._entries: list[tuple[PipelineSource, PipelineSink]] = []
        for index, branch in enumerate(branches):
            pipeline = Pipeline(list(branch), name=f"{self.name}::branch{index}")
            source = PipelineSource(self._leave_upstream, name=f"{pipeline.name}::In")
            sink = PipelineSink(self._leave_downstream, name=f"{pipeline.name}::Out")
            source.link(pipeline)
            pipeline.link(sink)
            self._branches.append(pipeline)
            self._entries.append((source, sink))
        self._starting = False
        self._held: list[Frame] = []
        self._seen: dict[FrameDirection, OrderedDict[int, int]] = {
            FrameDirection.DOWNSTREAM: OrderedDict(),
            FrameDirection.UPSTREAM: OrderedDict(),
        }

    def processors_with_children(self) -> list[FrameProcessor]:
        result: list[FrameProcessor] = [self]
        for branch in self._branches:
            result.extend(branch.processors_with_children())
        return result

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        for (source, sink), branch in zip(self._entries, self._branches, strict=True):
            await setup_processor(source, setup)
            await setup_processor(branch, setup)
            await setup_processor(sink, setup)

    async def cleanup(self) -> None:
        for (source, sink), branch in zip(self._entries, self._branches, strict=True):
            await cleanup_processor(source)
            await cleanup_processor(branch)
            await cleanup_processor(sink)
        await super().cleanup()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, StartFrame) and direction is FrameDirection.DOWNSTREAM:
            self._starting = True
        for source, sink in self._entries:
            if direction is FrameDirection.DOWNSTREAM:
                await source.queue_frame(frame, direction)
            else:
                await sink.queue_frame(frame, direction)

    async def _leave_downstream(self, frame: Frame, direction: FrameDirection) -> None:
        await self._leave(frame, FrameDirection.DOWNSTREAM)

    async def _leave_upstream(self, frame: Frame, direction: FrameDirection) -> None:
        await self._leave(frame, FrameDirection.UPSTREAM)

    async def _leave(self, frame: Frame, direction: FrameDirection) -> None:
        if self._starting and direction is FrameDirection.DOWNSTREAM:
            if not isinstance(frame, StartFrame):
                if not isinstance(frame, _SYNC_FRAMES):
                    self._held.append(frame)
                    return
            elif self._seen[direction].get(frame.id, 0) + 1 == len(self._branches):
                self._seen[direction].pop(frame.id, None)
                self._starting = False
                await self.push_frame(frame, direction)
                held, self._held = self._held, []
                for each in held:
                    await self._leave(each, direction)
                return
        seen = self._seen[direction]
        count = seen.get(frame.id, 0) + 1
        seen[frame.id] = count
        seen.move_to_end(frame.id)
        if len(seen) > _SEEN_LIMIT:
            seen.popitem(last=False)
        if isinstance(frame, _SYNC_FRAMES):
            if count == len(self._branches):
                del seen[frame.id]
                await self.push_frame(frame, direction)
        elif count == 1:
            await self.push_frame(frame, direction)
