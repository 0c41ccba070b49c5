"""The context message kept in one provider's own format.

Defined here, below the processors, so the adapters (which read and make such messages) need
nothing from above them; its public home, as in Pipecat, is
:mod:`callpipe.processors.aggregators.llm_context`, which re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class LLMSpecificMessage:
    """A message in one provider's own format (``llm`` names the provider, e.g. ``"openai"``)."""

    llm: str
    message: Any


__all__ = ["LLMSpecificMessage"]
