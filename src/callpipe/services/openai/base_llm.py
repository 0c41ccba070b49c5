"""Pipecat's ``services.openai.base_llm`` path, for bots and custom services that import it.

``BaseOpenAILLMService`` is :class:`~callpipe.services.openai.llm.OpenAILLMService` itself: a
subclass that sets its own ``base_url``, model or settings (the usual custom
OpenAI-compatible LLM) runs unchanged. Pipecat's client hooks (``create_client``,
``get_chat_completions``) are not there: callpipe streams Chat Completions with httpx.
"""

from __future__ import annotations

from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings

BaseOpenAILLMService = OpenAILLMService

__all__ = ["BaseOpenAILLMService", "OpenAILLMSettings"]
