"""Pipecat 1.x ``LLMLogObserver``: DEBUG log lines for what goes into and comes out of the LLM.

Pipecat picks the frames by their LLM service end; callpipe's observers sit below the services,
so this one goes by the frames' first push instead: a response, its text and its function calls
are logged where they are made (by the LLM), the context where it is sent off (towards it).
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.frames.frames import (
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from callpipe.observers.base_observer import BaseObserver, FramePushed
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContextFrame
from callpipe.processors.frame_processor import FrameDirection

logger = logging.getLogger(__name__)


class LLMLogObserver(BaseObserver):
    """Logs LLM activity: response start/end, each text chunk, function calls and their
    results, and the context the LLM is run on. Each frame is logged once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(observe_every_push=False, **kwargs)

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        secs = data.timestamp / 1_000_000_000
        src = data.source
        if isinstance(frame, LLMFullResponseStartFrame | LLMFullResponseEndFrame):
            event = "START" if isinstance(frame, LLMFullResponseStartFrame) else "END"
            logger.debug("%s → LLM %s RESPONSE at %.2fs", src, event, secs)
        elif isinstance(frame, LLMTextFrame):
            logger.debug("%s → LLM GENERATING: %r at %.2fs", src, frame.text, secs)
        elif isinstance(frame, FunctionCallInProgressFrame):
            if data.direction is FrameDirection.UPSTREAM:  # once, not for both broadcast twins
                logger.debug(
                    "%s → LLM FUNCTION CALL (%s): %r(%s) at %.2fs",
                    src,
                    frame.tool_call_id,
                    frame.function_name,
                    frame.arguments,
                    secs,
                )
        elif isinstance(frame, FunctionCallResultFrame):
            if frame.broadcast_sibling_id is None or data.direction is FrameDirection.DOWNSTREAM:
                logger.debug(
                    "%s → LLM FUNCTION CALL RESULT (%s): %s at %.2fs",
                    src,
                    frame.tool_call_id,
                    frame.result,
                    secs,
                )
        elif isinstance(frame, LLMContextFrame):
            context = frame.context
            messages = context.get_messages() if isinstance(context, LLMContext) else context
            logger.debug("→ %s LLM CONTEXT FRAME: %s at %.2fs", data.destination, messages, secs)
        elif isinstance(frame, OpenAILLMContextFrame):
            messages = frame.context.get_messages()
            logger.debug("→ %s LLM CONTEXT FRAME: %s at %.2fs", data.destination, messages, secs)
