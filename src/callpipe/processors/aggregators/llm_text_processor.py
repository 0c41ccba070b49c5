"""LLMTextProcessor: the LLM's streamed text cut into pieces before the TTS (Pipecat 1.14).

Placed between the LLM service and the TTS, it turns ``LLMTextFrame``\\ s into
``AggregatedTextFrame``\\ s, one per piece its text aggregator finishes (by default a
:class:`~callpipe.utils.text.simple_text_aggregator.SimpleTextAggregator`: sentences). The
rest is given out at ``LLMFullResponseEndFrame``, ``TTSStoppedFrame`` and ``EndFrame``; an
interruption drops it. Each piece keeps the ``skip_tts`` of the text it came from.

``text_transforms`` (``[(text_type or "*", async (text, text_type) -> text), ...]``) rewrite
the pieces for everything after this processor: the voice, the context and any client. A
transform that leaves only whitespace, or raises, drops the piece (a raise is also reported
as an error). To change only what is spoken, give the transforms to the TTS service instead.
"""

from __future__ import annotations

from typing import Any

from callpipe.frames.frames import (
    AggregatedTextFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    TTSStoppedFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.utils.text.base_text_aggregator import Aggregation, BaseTextAggregator, TextType
from callpipe.utils.text.pattern_pair_aggregator import PatternMatch
from callpipe.utils.text.simple_text_aggregator import SimpleTextAggregator
from callpipe.utils.text.transforms.text_transform import TextTransform

_PLAIN = frozenset({TextType.SENTENCE, TextType.TOKEN})


class LLMTextProcessor(FrameProcessor):
    """``LLMTextFrame`` in, ``AggregatedTextFrame`` out (see the module docstring)."""

    def __init__(
        self,
        *,
        text_aggregator: BaseTextAggregator | None = None,
        text_transforms: list[tuple[TextType | str, TextTransform]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._aggregator = text_aggregator or SimpleTextAggregator()
        self._transforms: list[tuple[TextType | str, TextTransform]] = list(text_transforms or [])
        self._skip_tts: bool | None = None

    def add_text_transformer(
        self, transform_function: TextTransform, text_type: TextType | str = "*"
    ) -> None:
        """Rewrite the pieces of ``text_type`` (``"*"``: every type) with ``transform_function``."""
        self._transforms.append((text_type, transform_function))

    def remove_text_transformer(
        self, transform_function: TextTransform, text_type: TextType | str = "*"
    ) -> None:
        self._transforms = [
            (kind, fn)
            for kind, fn in self._transforms
            if not (kind == text_type and fn == transform_function)
        ]

    async def reset(self) -> None:
        await self._aggregator.reset()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            self._skip_tts = frame.skip_tts
            async for aggregation in self._aggregator.aggregate(frame.text):
                await self._push_piece(aggregation, frame.skip_tts)
        elif isinstance(frame, LLMFullResponseEndFrame | TTSStoppedFrame | EndFrame):
            # A speech-to-speech service stops speaking before its reply ends: what is held
            # was spoken, so it goes before the stop.
            remaining = await self._aggregator.flush()
            if remaining is not None:
                await self._push_piece(remaining, self._skip_tts)
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            await self._aggregator.handle_interruption()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _push_piece(self, aggregation: Aggregation, skip_tts: bool | None) -> None:
        text = await self._transform(aggregation.text, aggregation.type)
        if text is None:
            return
        frame = AggregatedTextFrame(
            text, text_type=aggregation.type, raw_text=_raw_text(aggregation, text)
        )
        frame.skip_tts = skip_tts
        if aggregation.type == TextType.TOKEN:
            frame.includes_inter_frame_spaces = True  # tokens carry their own spacing
        await self.push_frame(frame)

    async def _transform(self, text: str, text_type: str) -> str | None:
        """The piece after the transforms for its type; None to drop it."""
        out = text
        for kind, transform in self._transforms:
            if kind not in (text_type, "*"):
                continue
            try:
                out = await transform(out, text_type)
            except Exception as exc:
                # A transform may exist to remove something: passing the text on as it was
                # is not safe, so the piece is dropped.
                await self.push_error(f"LLMTextProcessor: a text transform failed: {exc}", exc)
                return None
        if out != text and not out.strip():
            return None
        return out


def _raw_text(aggregation: Aggregation, text: str) -> str | None:
    """For a block from a pattern: the block with its delimiters around the (rewritten)
    content, which the assistant's context records. None for sentences and tokens."""
    if not isinstance(aggregation, PatternMatch) or aggregation.type in _PLAIN:
        return None
    full, content = aggregation.full_match, aggregation.text
    if text == content:
        return full
    at = full.find(content)
    if at < 0:
        return text
    return full[:at] + text + full[at + len(content) :]
