"""StatelessTextTransformer: rewrite the text of every ``TextFrame`` with one function."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from callpipe.frames.frames import Frame, TextFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

TransformFn = Callable[[str], str] | Callable[[str], Awaitable[str]]


class StatelessTextTransformer(FrameProcessor):
    """Replaces each ``TextFrame`` with a plain ``TextFrame`` of ``transform_fn(text)``.

    ``transform_fn`` may be a plain function or a coroutine function. Other frames pass
    unchanged. As in Pipecat, the new frame is a ``TextFrame`` whatever the subclass of the
    one it replaces.
    """

    def __init__(self, transform_fn: TransformFn, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._transform_fn = transform_fn

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, TextFrame):
            await self.push_frame(frame, direction)
            return
        result = self._transform_fn(frame.text)
        if inspect.isawaitable(result):
            result = await result
        await self.push_frame(TextFrame(text=result), direction)
