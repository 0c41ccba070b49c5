"""Pipecat's older path of :mod:`callpipe.adapters.llm.base_llm_adapter` (deprecated in 1.14)."""

from callpipe.adapters.llm.base_llm_adapter import BaseLLMAdapter, TLLMInvocationParams

__all__ = ["BaseLLMAdapter", "TLLMInvocationParams"]
