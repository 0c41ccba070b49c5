"""AsyncGeneratorProcessor: hand the serialized frames of a pipeline to an ``async for`` loop.

Frames pass through unchanged; each one the serializer turns into a message is also queued
for :meth:`AsyncGeneratorProcessor.generator`, which ends after the pipeline's ``EndFrame`` or
``CancelFrame``. For streaming a pipeline's output over a connection the application owns
(an HTTP response, a custom socket).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from callpipe.frames.frames import CancelFrame, EndFrame, Frame, StartFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.serializers.base_serializer import FrameSerializer


class AsyncGeneratorProcessor(FrameProcessor):
    """Passes frames on and queues ``await serializer.serialize(frame)`` for the generator.

    The serializer's ``setup`` gets the ``StartFrame`` (sample rates), as in a transport.
    Frames it does not serialize (None or empty) are not queued. The queue has no limit:
    consume the generator while the pipeline runs.
    """

    def __init__(self, *, serializer: FrameSerializer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._serializer = serializer
        self._data: asyncio.Queue[str | bytes | None] = asyncio.Queue()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self._serializer.setup(frame)
        await self.push_frame(frame, direction)
        if isinstance(frame, EndFrame | CancelFrame):
            self._data.put_nowait(None)
            return
        data = await self._serializer.serialize(frame)
        if data:
            self._data.put_nowait(data)

    async def generator(self) -> AsyncGenerator[str | bytes, None]:
        """Each serialized message in order; returns once the pipeline ended or was cancelled."""
        while (data := await self._data.get()) is not None:
            yield data
