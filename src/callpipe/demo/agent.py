"""DemoAgent: the demo's offline brain, :class:`~callpipe.demo.intents.DemoScript` on a pipeline.

Sits after the STT: each final transcript and each key press goes through the script, and its
reply goes to the TTS. A reply that ends the call is spoken first; the task then ends, and the
transport hangs up once the goodbye has played.
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.demo.intents import DemoScript, Reply
from callpipe.frames.frames import (
    EndTaskFrame,
    Frame,
    InputDTMFFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)


class DemoAgent(FrameProcessor):
    """Answers transcripts and keys with the demo script (see the module docstring)."""

    def __init__(self, script: DemoScript | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script or DemoScript()
        self.ending = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if direction is FrameDirection.UPSTREAM or self.ending:
            return
        if isinstance(frame, TranscriptionFrame):
            reply = self.script.on_words(frame.text)
            logger.debug("%s: heard %r, answering %r", self, frame.text, reply)
            await self._reply(reply)
        elif isinstance(frame, InputDTMFFrame):
            reply = self.script.on_key(frame.button.value)
            logger.debug("%s: key %s, answering %r", self, frame.button.value, reply)
            await self._reply(reply)

    async def _reply(self, reply: Reply | None) -> None:
        if reply is None:
            return
        await self.push_frame(TTSSpeakFrame(reply.text))
        if reply.hang_up:
            self.ending = True
            logger.info("demo: the caller said goodbye, hanging up")
            await self.push_frame(
                EndTaskFrame(reason="caller said goodbye"), FrameDirection.UPSTREAM
            )
