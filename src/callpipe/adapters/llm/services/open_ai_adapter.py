"""What an OpenAI Chat Completions request takes from the context (Pipecat 1.14's path).

``OpenAILLMService.build_chat_completion_params(params_from_context)`` receives these and
returns the whole request body; a subclass for an OpenAI-compatible provider overrides it to
add or change fields (``params = super().build_chat_completion_params(p); params[...] = ...``).
"""

from __future__ import annotations

from typing import Any, TypedDict


class OpenAILLMInvocationParams(TypedDict, total=False):
    """The request fields that come from the context: ``messages`` always; ``tools`` and
    ``tool_choice`` only when the context has tools (Pipecat fills them with the OpenAI
    client's ``NOT_GIVEN`` instead; callpipe sends JSON itself and leaves them out)."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: Any


__all__ = ["OpenAILLMInvocationParams"]
