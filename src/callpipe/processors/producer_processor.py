"""ProducerProcessor: copy selected frames to consumers elsewhere in the pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callpipe.frames.frames import Frame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

Transformer = Callable[[Frame], Awaitable[Frame]]


async def identity_transformer(frame: Frame) -> Frame:
    return frame


class ProducerProcessor(FrameProcessor):
    """Frames for which ``await filter(frame)`` is true go (transformed) to every consumer.

    With ``passthrough`` they also continue downstream; frames the filter rejects always do.
    Pair with :class:`~callpipe.processors.consumer_processor.ConsumerProcessor`, e.g. to feed
    one branch of a ``ParallelPipeline`` from another.
    """

    def __init__(
        self,
        *,
        filter: Callable[[Frame], Awaitable[bool]],
        transformer: Transformer = identity_transformer,
        passthrough: bool = True,
    ) -> None:
        super().__init__()
        self._filter = filter
        self._transformer = transformer
        self._passthrough = passthrough
        self._consumers: list[asyncio.Queue[Frame]] = []

    def add_consumer(self) -> asyncio.Queue[Frame]:
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        self._consumers.append(queue)
        return queue

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if await self._filter(frame):
            for consumer in self._consumers:
                consumer.put_nowait(await self._transformer(frame))
            if not self._passthrough:
                return
        await self.push_frame(frame, direction)
