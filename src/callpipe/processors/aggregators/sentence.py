"""SentenceAggregator: join streamed ``TextFrame`` pieces into whole sentences."""

from __future__ import annotations

from typing import Any

from callpipe.frames.frames import (
    EagerTranscriptionFrame,
    EndFrame,
    Frame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    TextFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.utils.string import match_endofsentence


class SentenceAggregator(FrameProcessor):
    """Holds text until a sentence ends, then pushes it as one ``TextFrame``.

    ``TextFrame("Hello,")`` gives nothing; ``TextFrame(" world. How")`` then gives
    ``TextFrame("Hello, world.")`` and keeps ``" How"`` for the next sentence. Sentence ends
    follow :func:`callpipe.utils.string.match_endofsentence` (an abbreviation such as ``Dr.``
    does not end one). What is left is pushed before the ``EndFrame``.
    Interim and eager (not yet committed) transcriptions are dropped; an interruption drops
    the unfinished sentence.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._aggregation = ""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterimTranscriptionFrame | EagerTranscriptionFrame):
            return
        if isinstance(frame, TextFrame):
            self._aggregation += frame.text
            while end := match_endofsentence(self._aggregation):
                sentence, self._aggregation = self._aggregation[:end], self._aggregation[end:]
                await self.push_frame(TextFrame(sentence))
            return
        if isinstance(frame, EndFrame) and self._aggregation:
            await self.push_frame(TextFrame(self._aggregation))
            self._aggregation = ""
        elif isinstance(frame, InterruptionFrame):
            self._aggregation = ""
        await self.push_frame(frame, direction)
