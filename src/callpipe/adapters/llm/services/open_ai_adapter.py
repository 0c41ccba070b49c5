"""What an OpenAI Chat Completions request takes from the context (Pipecat 1.14's path).

``OpenAILLMService.build_chat_completion_params(params_from_context)`` receives these and
returns the whole request body; a subclass for an OpenAI-compatible provider overrides it to
add or change fields (``params = super().build_chat_completion_params(p); params[...] = ...``).

:class:`OpenAILLMAdapter` is the adapter of an ``LLMService`` that names none (Pipecat's
default): a custom service written for Pipecat builds its request with
``await self.get_llm_adapter().get_llm_invocation_params(context, system_instruction=...)``.
"""

from __future__ import annotations

from typing import Any, TypedDict

from callpipe.adapters.llm.base_llm_adapter import AdapterContext, BaseLLMAdapter
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema


class OpenAILLMInvocationParams(TypedDict, total=False):
    """The request fields that come from the context: ``messages`` always; ``tools`` and
    ``tool_choice`` only when the context has tools (Pipecat fills them with the OpenAI
    client's ``NOT_GIVEN`` instead; callpipe sends JSON itself and leaves them out)."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: Any


class OpenAILLMAdapter(BaseLLMAdapter[OpenAILLMInvocationParams]):
    """A context as Chat Completions request fields (messages, tools, tool choice)."""

    @property
    def id_for_llm_specific_messages(self) -> str:
        return "openai"

    async def get_llm_invocation_params(
        self,
        context: AdapterContext,
        *,
        system_instruction: str | None = None,
        convert_developer_to_user: bool = False,
        **kwargs: Any,
    ) -> OpenAILLMInvocationParams:
        """``messages`` (the context's standard messages and its ``openai`` ones, private keys
        left out; ``system_instruction``, when given, first as a ``system`` message;
        ``developer`` messages as ``user`` ones with ``convert_developer_to_user``), and
        ``tools`` / ``tool_choice`` when the context has tools (the service's own cancel tools
        included). New lists: changing them leaves the context as it is."""
        messages = context.messages_for_api()
        if convert_developer_to_user:
            messages = [
                {**m, "role": "user"} if m.get("role") == "developer" else m for m in messages
            ]
        if system_instruction:
            messages.insert(0, {"role": "system", "content": system_instruction})
        params: OpenAILLMInvocationParams = {"messages": messages}
        tools = context.tools_for_api()
        if tools:
            params["tools"] = tools
            tool_choice = context.tool_choice_for_api()
            if tool_choice is not None:
                params["tool_choice"] = tool_choice
        return params

    def to_provider_tools_format(self, tools_schema: ToolsSchema) -> list[dict[str, Any]]:
        """The tools as Chat Completions takes them (``custom_tools[AdapterType.OPENAI]``
        appended as given)."""
        return tools_schema.to_openai()

    def from_standard_tools(self, tools: Any) -> Any:
        """A ``ToolsSchema`` converted; anything else (already the provider's) as it is."""
        if isinstance(tools, ToolsSchema):
            return self.to_provider_tools_format(tools)
        return tools


__all__ = ["OpenAILLMAdapter", "OpenAILLMInvocationParams"]
