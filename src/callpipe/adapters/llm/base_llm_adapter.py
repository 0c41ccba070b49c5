"""The base of LLM adapters (Pipecat 1.14's ``adapters.llm.base_llm_adapter``).

An adapter turns a conversation context into what one provider's API takes. An
``LLMService`` names its adapter with the class attribute ``adapter_class`` (none:
:class:`~callpipe.adapters.llm.services.open_ai_adapter.OpenAILLMAdapter`) and hands it out
with ``get_llm_adapter()``. A custom LLM service written for Pipecat calls
``await self.get_llm_adapter().get_llm_invocation_params(context, ...)`` to build its request.

callpipe's own providers build their requests themselves; their adapters (Anthropic,
Responses) only offer the conversion functions, and their ``get_llm_invocation_params``
raises ``NotImplementedError``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, Protocol, TypeVar

from callpipe.adapters.llm.context_messages import LLMSpecificMessage


class AdapterContext(Protocol):
    """What an adapter reads of a conversation context (callpipe's ``LLMContext`` and
    ``OpenAILLMContext`` both have it; declared here so the adapters need nothing from the
    processors above them)."""

    @property
    def messages(self) -> list[Any]: ...

    def messages_for_api(self) -> list[dict[str, Any]]: ...

    def tools_for_api(self) -> list[dict[str, Any]] | None: ...

    def tool_choice_for_api(self) -> Any: ...


TLLMInvocationParams = TypeVar("TLLMInvocationParams")


class BaseLLMAdapter(ABC, Generic[TLLMInvocationParams]):
    """One provider's view of a context: its messages, and its request parameters."""

    @property
    @abstractmethod
    def id_for_llm_specific_messages(self) -> str:
        """The ``llm`` of the context messages only this provider reads."""

    async def get_llm_invocation_params(
        self, context: AdapterContext, **kwargs: Any
    ) -> TLLMInvocationParams:
        """What a request to this provider takes from ``context`` (an adapter for a provider
        of its own implements it; ``async`` as in Pipecat 1.14)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no get_llm_invocation_params: callpipe's service for "
            "this provider builds its requests itself"
        )

    def create_llm_specific_message(self, message: Any) -> LLMSpecificMessage:
        """A context message only this provider reads."""
        return LLMSpecificMessage(llm=self.id_for_llm_specific_messages, message=message)

    def get_messages(self, context: AdapterContext) -> list[Any]:
        """The context's messages this provider sees: the standard ones and its own."""
        llm = self.id_for_llm_specific_messages
        return [
            m for m in context.messages if not isinstance(m, LLMSpecificMessage) or m.llm == llm
        ]

    def get_messages_for_logging(self, context: AdapterContext) -> list[Any]:
        """The messages, for a log line (as :meth:`get_messages`)."""
        return self.get_messages(context)


__all__ = ["BaseLLMAdapter", "TLLMInvocationParams"]
