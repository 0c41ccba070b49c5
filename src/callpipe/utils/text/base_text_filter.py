"""The deprecated text-filter interface (Pipecat 1.14 ``BaseTextFilter``).

New code registers a :data:`~callpipe.utils.text.transforms.text_transform.TextTransform`
with ``text_transforms`` instead; filters are still applied when given to a TTS service as
``text_filters``, before the transforms.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any


class BaseTextFilter(ABC):
    """Rewrites the text a TTS service is about to synthesize.

    A filter may keep state across the pieces of one reply (a code block that spans
    sentences); the TTS service calls :meth:`handle_interruption` when a reply ends or is
    interrupted, and :meth:`reset_interruption` before each :meth:`filter` call.

    Deprecated since Pipecat 1.14: use ``text_transforms`` (for markdown,
    ``[("*", StripMarkdown())]``).
    """

    async def update_settings(self, settings: Mapping[str, Any]) -> None:  # noqa: B027 (a hook)
        """Change the filter's options at run time (default: nothing to change)."""

    @abstractmethod
    async def filter(self, text: str) -> str:
        """Return ``text`` as it should be spoken."""

    async def handle_interruption(self) -> None:  # noqa: B027 (a hook)
        """The reply ended or was interrupted: forget any state kept across pieces."""

    async def reset_interruption(self) -> None:  # noqa: B027 (a hook)
        """Called before each :meth:`filter` call, once the interruption is handled."""
