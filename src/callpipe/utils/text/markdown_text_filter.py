"""The deprecated markdown filter (Pipecat 1.14 ``MarkdownTextFilter``).

Same markdown rules as :class:`~callpipe.utils.text.transforms.strip_markdown.StripMarkdown`
(hand-written, no markdown library; see that module for why), plus the filter's options:
code blocks and tables can be left out of the speech, and a code block is followed across the
pieces of a reply, since a sentence split usually falls inside one. New code uses
``text_transforms=[("*", StripMarkdown())]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from callpipe.utils.text.base_text_filter import BaseTextFilter
from callpipe.utils.text.transforms.strip_markdown import remove_markdown

_FENCE = re.compile(r"`{3,}|~{3,}")
_TABLE_LINE = re.compile(r"^[ \t]*\|.*\|[ \t]*$\n?", re.MULTILINE)
# Runs of five or more of one symbol ("=====", "-----"); letters and digits never count, so
# "1000000" keeps its zeros.
_REPEATED = re.compile(r"([^\w\s])\1{4,}")
_SCHEME = re.compile(r"https?://")


class MarkdownTextFilter(BaseTextFilter):
    """Removes markdown from the text a TTS service speaks.

    Deprecated since Pipecat 1.14: use ``text_transforms=[("*", StripMarkdown())]``.
    """

    class InputParams(BaseModel):
        """Options of :class:`MarkdownTextFilter` (Pipecat's names and defaults)."""

        enable_text_filter: bool | None = True
        """Remove markdown at all (False: the text passes unchanged)."""
        filter_code: bool | None = False
        """Leave fenced code blocks out of the speech (False: speak their content)."""
        filter_tables: bool | None = False
        """Leave tables out of the speech (False: each row is spoken as its cells)."""
        filter_repeated_sequences: bool | None = True
        """Remove runs of five or more of the same symbol ("=====")."""

    def __init__(self, params: InputParams | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settings = params or self.InputParams()
        self._in_code_block = False

    async def update_settings(self, settings: Mapping[str, Any]) -> None:
        for key, value in settings.items():
            if key in type(self._settings).model_fields:
                setattr(self._settings, key, value)

    async def filter(self, text: str) -> str:
        if not self._settings.enable_text_filter:
            return text
        if self._settings.filter_code:
            text = self._drop_code(text)
        if self._settings.filter_tables:
            text = _TABLE_LINE.sub("", text)
        if self._settings.filter_repeated_sequences:
            text = _REPEATED.sub("", text)
        text = remove_markdown(text, keep_code=True)
        return _SCHEME.sub("", text)

    def _drop_code(self, text: str) -> str:
        """``text`` without what lies between fences, remembering an open fence for the next
        piece of the reply."""
        kept: list[str] = []
        for i, part in enumerate(_FENCE.split(text)):
            if i:
                self._in_code_block = not self._in_code_block
            if not self._in_code_block:
                kept.append(part)
        return "".join(kept)

    async def handle_interruption(self) -> None:
        self._in_code_block = False
