"""The older home of :class:`GrokLLMService` (Pipecat's ``services.grok.llm``).

Deprecated, as in Pipecat 1.14: import from :mod:`callpipe.services.xai.llm`.
"""

from __future__ import annotations

import warnings

from callpipe.services.xai.llm import GrokLLMService, GrokLLMSettings

__all__ = ["GrokLLMService", "GrokLLMSettings"]

warnings.warn(
    "callpipe.services.grok.llm is deprecated: import GrokLLMService from "
    "callpipe.services.xai.llm",
    DeprecationWarning,
    stacklevel=2,
)
