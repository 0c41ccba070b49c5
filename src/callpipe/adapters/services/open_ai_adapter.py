"""Re-export: :mod:`callpipe.adapters.llm.services.open_ai_adapter` (Pipecat's older path)."""

from callpipe.adapters.llm.services.open_ai_adapter import OpenAILLMInvocationParams

__all__ = ["OpenAILLMInvocationParams"]
