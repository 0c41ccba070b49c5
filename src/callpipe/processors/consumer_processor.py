"""ConsumerProcessor: push the frames a ProducerProcessor hands over, from where it sits."""

from __future__ import annotations

import asyncio
from typing import Any

from callpipe.frames.frames import CancelFrame, EndFrame, Frame, StartFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.processors.producer_processor import (
    ProducerProcessor,
    Transformer,
    identity_transformer,
)


class ConsumerProcessor(FrameProcessor):
    """Registers with ``producer`` at start; each produced frame is transformed and pushed in
    ``direction`` (through this processor's own queue, so order with its other frames holds).
    Stops consuming at end or cancel."""

    def __init__(
        self,
        *,
        producer: ProducerProcessor,
        transformer: Transformer = identity_transformer,
        direction: FrameDirection = FrameDirection.DOWNSTREAM,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._producer = producer
        self._transformer = transformer
        self._direction = direction
        self._consumer: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame) and self._consumer is None:
            queue = self._producer.add_consumer()
            self._consumer = self.create_task(self._consume(queue), "consumer")
        elif isinstance(frame, EndFrame | CancelFrame):
            await self.cancel_task(self._consumer)
            self._consumer = None
        await self.push_frame(frame, direction)

    async def _consume(self, queue: asyncio.Queue[Frame]) -> None:
        while True:
            frame = await queue.get()
            await self.push_frame(await self._transformer(frame), self._direction)
