"""SyncParallelPipeline: parallel branches whose output for each frame leaves all together.

Each data or control frame goes into every branch, followed by a :class:`SyncFrame` marker;
once the marker has come out of every branch, all the frames the branches produced for that
input are pushed on, a frame that came out of several branches only once. The next input
frame waits until then. Image-and-audio pairs (a picture with its narration) stay together.

System frames are not held: they go through the branches and leave as in
:class:`~callpipe.pipeline.parallel_pipeline.ParallelPipeline`. For the marker to come out,
each branch must pass frames it does not handle on in order, as processors normally do (a
branch that drops the marker holds the pipeline up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from callpipe.frames.frames import (
    ControlFrame,
    EndFrame,
    Frame,
    SystemFrame,
    UninterruptibleFrame,
)
from callpipe.pipeline.parallel_pipeline import ParallelPipeline
from callpipe.pipeline.pipeline import PipelineSink, PipelineSource, PushCallback
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class FrameOrder(Enum):
    """The order in which the frames released for one input are pushed."""

    ARRIVAL = "arrival"
    """As they came out of the branches (the default)."""
    PIPELINE = "pipeline"
    """Branch by branch: everything from the first branch, then the second, ..."""


@dataclass(slots=True)
class SyncFrame(ControlFrame, UninterruptibleFrame):
    """The marker sent into a branch behind each frame; never leaves the pipeline.

    Uninterruptible: a frame that survives an interruption is still waited for, so its marker
    must survive too."""


class _Round:
    """The frames the branches produce for one input frame, until each branch is done."""

    def __init__(self, markers: list[Frame]) -> None:
        self.markers = markers
        self.waiting = set(range(len(markers)))
        self.done = asyncio.Event()
        self.out: list[tuple[int, Frame, FrameDirection]] = []

    def branch_done(self, index: int) -> None:
        """Branch ``index`` let its marker out; the round is done once every branch has."""
        self.waiting.discard(index)
        if not self.waiting:
            self.done.set()


class SyncParallelPipeline(ParallelPipeline):
    """Runs each argument (a list of processors) as a branch; see the module docstring.

    ``frame_order`` chooses how the frames released together are ordered.
    """

    direct = False  # data frames wait here, in order, while the branches work

    def __init__(
        self,
        *branches: Sequence[FrameProcessor],
        frame_order: FrameOrder = FrameOrder.ARRIVAL,
        name: str | None = None,
    ) -> None:
        super().__init__(*branches, name=name)
        self._frame_order = frame_order
        self._round: _Round | None = None
        # Entries that know their branch: what a branch produces is kept apart per branch.
        self._entries = []
        for index, pipeline in enumerate(self._branches):
            source = PipelineSource(self._from(index), name=f"{pipeline.name}::In")
            sink = PipelineSink(self._from(index), name=f"{pipeline.name}::Out")
            source.link(pipeline)
            pipeline.link(sink)
            self._entries.append((source, sink))

    def _from(self, index: int) -> PushCallback:
        async def leave(frame: Frame, direction: FrameDirection) -> None:
            await self._branch_output(index, frame, direction)

        return leave

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await FrameProcessor.process_frame(self, frame, direction)  # worker, interruptions
        if isinstance(frame, SystemFrame):
            await super().process_frame(frame, direction)
            return
        markers: list[Frame] = [frame] * len(self._entries)
        if not isinstance(frame, EndFrame):  # an EndFrame is its own marker
            markers = [SyncFrame() for _ in self._entries]
        self._round = round_ = _Round(markers)
        try:
            for (source, sink), marker in zip(self._entries, markers, strict=True):
                entry = source if direction is FrameDirection.DOWNSTREAM else sink
                await entry.queue_frame(frame, direction)
                if marker is not frame:
                    await entry.queue_frame(marker, direction)
            await round_.done.wait()
        finally:
            self._round = None
        await self._release(round_)

    async def _branch_output(self, index: int, frame: Frame, direction: FrameDirection) -> None:
        round_ = self._round
        if isinstance(frame, SyncFrame):
            if round_ is not None and frame is round_.markers[index]:
                round_.branch_done(index)
            return  # a marker never leaves (nor a stale one, after an interruption)
        if round_ is None or isinstance(frame, SystemFrame):
            await self._leave(frame, direction)
            return
        round_.out.append((index, frame, direction))
        if frame is round_.markers[index]:  # an EndFrame came out of this branch
            round_.branch_done(index)

    async def _release(self, round_: _Round) -> None:
        out = round_.out
        if self._frame_order is FrameOrder.PIPELINE:
            out = sorted(out, key=lambda item: item[0])  # stable: arrival order per branch
        pushed: set[tuple[int, FrameDirection]] = set()
        for _, frame, direction in out:
            key = (frame.id, direction)
            if key in pushed:
                continue
            pushed.add(key)
            if self._starting and direction is FrameDirection.DOWNSTREAM:
                self._held.append(frame)  # leaves right after the StartFrame, as in the parent
            else:
                await self.push_frame(frame, direction)
