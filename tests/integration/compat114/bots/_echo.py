"""The little dialogue the 1.14-style test bots share: "you said" + echo, keys, goodbye on #."""

from __future__ import annotations

from callpipe.frames.frames import (
    EndWorkerFrame,
    Frame,
    InputDTMFFrame,
    KeypadEntry,
    TTSSpeakFrame,
    TTSStartedFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class Dialog(FrameProcessor):
    """Between the echo and the TTS. ``end_direction``: where EndWorkerFrame goes on '#'
    (downstream: after what is queued; upstream: straight to the worker)."""

    def __init__(self, end_direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        super().__init__()
        self.end_direction = end_direction

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSStartedFrame) and direction is FrameDirection.DOWNSTREAM:
            await self.push_frame(TTSSpeakFrame("You said:"))
        await self.push_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame):
            if frame.button == KeypadEntry.POUND:
                await self.push_frame(TTSSpeakFrame("Goodbye!"))
                await self.push_frame(
                    EndWorkerFrame(reason="caller pressed pound"), self.end_direction
                )
            else:
                await self.push_frame(TTSSpeakFrame(f"You pressed {frame.button.value}."))
