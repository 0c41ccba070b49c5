"""Small processors used by the pipeline tests."""

from __future__ import annotations

import asyncio

from callpipe.frames.frames import Frame, StartFrame, TextFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class Recorder(FrameProcessor):
    """Records (frame, direction) of everything it processes and passes it on."""

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.seen: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, StartFrame):
            self.seen.append(frame)
        await self.push_frame(frame, direction)


class Suffixer(FrameProcessor):
    """Appends a suffix to text frames (proves every hop processed them, in order)."""

    def __init__(self, suffix: str) -> None:
        super().__init__()
        self.suffix = suffix

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):
            frame = TextFrame(frame.text + self.suffix)
        await self.push_frame(frame, direction)


class Slow(FrameProcessor):
    """Takes ``delay`` seconds per text frame; records when it starts and finishes each."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.started: list[str] = []
        self.finished: list[str] = []
        self.gate = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):
            self.started.append(frame.text)
            self.gate.set()
            await asyncio.sleep(self.delay)
            self.finished.append(frame.text)
        await self.push_frame(frame, direction)
