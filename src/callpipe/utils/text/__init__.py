"""Text helpers for speech: what a TTS service does to the LLM's text before it is spoken.

Mirrors ``pipecat.utils.text`` for the parts callpipe has: :mod:`.transforms` (the
``text_transforms`` callables, such as ``StripMarkdown``), the text aggregators that
``LLMTextProcessor`` cuts the LLM's text with (:mod:`.base_text_aggregator`,
:mod:`.simple_text_aggregator`, :mod:`.skip_tags_aggregator`, :mod:`.pattern_pair_aggregator`)
and the deprecated filters (:mod:`.base_text_filter`, :mod:`.markdown_text_filter`).
"""
