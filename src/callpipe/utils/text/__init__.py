"""Text helpers for speech: what a TTS service does to the LLM's text before it is spoken.

Mirrors ``pipecat.utils.text`` for the parts callpipe has: :mod:`.transforms` (the
``text_transforms`` callables, such as ``StripMarkdown``) and the deprecated filters
(:mod:`.base_text_filter`, :mod:`.markdown_text_filter`).
"""
