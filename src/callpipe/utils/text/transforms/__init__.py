"""Text transforms for ``text_transforms`` on a TTS service (Pipecat's
``pipecat.utils.text.transforms``; callpipe has the markdown one)."""

from callpipe.utils.text.transforms.strip_markdown import StripMarkdown, strip_markdown
from callpipe.utils.text.transforms.text_transform import TextTransform

__all__ = ["StripMarkdown", "TextTransform", "strip_markdown"]
