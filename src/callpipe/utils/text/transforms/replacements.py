"""Find-and-replace rules of your own (Pipecat 1.14's ``replace_text``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.transforms.text_transform import TextTransform


def replace_text(replacements: Sequence[tuple[str | re.Pattern[str], str]]) -> TextTransform:
    r"""A transform applying ``(pattern, replacement)`` rules in order.

    Patterns are regular expressions (``re.escape`` one to match it literally) and
    replacements follow :func:`re.sub` (``\1`` for a group). The patterns are compiled here,
    so a bad one raises :exc:`re.error` when the bot is built, not during a call.

    Example::

        transform = replace_text([
            (r"\bDr\.", "Doctor"),
            (r"\bSt\.", "Street"),
            (r"\bvs\b", "versus"),
        ])
        tts = CartesiaTTSService(..., text_transforms=[("*", transform)])
    """
    rules = [(re.compile(pattern), replacement) for pattern, replacement in replacements]

    async def _transform(text: str, text_type: str | TextType) -> str:
        for pattern, replacement in rules:
            text = pattern.sub(replacement, text)
        return text

    return _transform
