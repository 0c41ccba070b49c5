"""The callable type of ``text_transforms`` (Pipecat 1.14's ``TextTransform``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from callpipe.utils.text.base_text_aggregator import TextType

TextTransform = Callable[[str, str | TextType], Awaitable[str]]
"""``async (text, text_type) -> text``: rewrites a piece of text before a TTS service sends it.

Registered on a TTS service as ``text_transforms=[(text_type, transform), ...]`` (``"*"``
for every type), it changes only what the provider is sent; the assistant context keeps the
LLM's text (see :class:`callpipe.services.tts_service.TTSService`).
"""
