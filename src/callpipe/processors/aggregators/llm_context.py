"""LLMContext: the provider-neutral conversation (Pipecat 1.14's universal context).

Messages are dicts in the Chat Completions shape (``role`` + ``content``, assistant
``tool_calls``, ``tool`` results), which is the neutral form Pipecat 1.14 uses too; a message
only one provider understands is wrapped in :class:`LLMSpecificMessage`. Tools are a
:class:`~callpipe.adapters.llm.schemas.tools_schema.ToolsSchema` (a plain list of
``FunctionSchema`` is wrapped in one) and are translated for the wire by the LLM service.

One context object is shared by the user aggregator (what the caller said), the LLM service
(tool calls and results) and the assistant aggregator (what the caller heard).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol

from callpipe.adapters.llm.context_messages import LLMSpecificMessage
from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import (
    FunctionCallCancelFrame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
    FunctionCallsStartedFrame,
    LLMContextFrame,
    LLMMessagesAppendFrame,
    LLMMessagesTransformFrame,
    LLMMessagesUpdateFrame,
    LLMRunFrame,
    LLMSetToolChoiceFrame,
    LLMSetToolsFrame,
)
from callpipe.utils.types import NOT_GIVEN, NotGiven, is_given

__all__ = [
    "NOT_GIVEN",
    "ChatContext",
    "FunctionCallCancelFrame",
    "FunctionCallFromLLM",
    "FunctionCallInProgressFrame",
    "FunctionCallResultFrame",
    "FunctionCallResultProperties",
    "FunctionCallsStartedFrame",
    "LLMContext",
    "LLMContextFrame",
    "LLMContextMessage",
    "LLMMessagesAppendFrame",
    "LLMMessagesTransformFrame",
    "LLMMessagesUpdateFrame",
    "LLMRunFrame",
    "LLMSetToolChoiceFrame",
    "LLMSetToolsFrame",
    "LLMSpecificMessage",
    "LLMStandardMessage",
    "NotGiven",
    "is_given",
    "standard_message_text",
]

PRIVATE_KEYS = frozenset({"interrupted"})
"""Keys callpipe adds to messages for its own bookkeeping; never sent to a provider."""


LLMStandardMessage = dict[str, Any]
"""A message in the neutral (Chat Completions) shape: ``role``, ``content`` and so on."""

LLMContextMessage = LLMStandardMessage | LLMSpecificMessage


def standard_message_text(message: LLMContextMessage) -> str:
    """The text of a message (text parts of list content joined); ``""`` when it has none."""
    if isinstance(message, LLMSpecificMessage):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part["text"])
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and part.get("text")
        )
    return ""


def strip_private(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` without callpipe's bookkeeping keys."""
    if PRIVATE_KEYS.intersection(message):
        return {k: v for k, v in message.items() if k not in PRIVATE_KEYS}
    return dict(message)


class ChatContext(Protocol):
    """What the aggregators and the LLM service need of a context (new or old kind)."""

    @property
    def messages(self) -> list[Any]: ...

    def add_message(self, message: Any) -> None: ...

    def add_messages(self, messages: list[Any]) -> None: ...

    def set_messages(self, messages: list[Any]) -> None: ...

    def messages_for_api(self) -> list[dict[str, Any]]: ...

    def tools_for_api(self) -> list[dict[str, Any]] | None: ...

    def tool_choice_for_api(self) -> Any: ...

    def function_schemas(self) -> list[FunctionSchema]: ...


def normalize_tools(tools: Any) -> ToolsSchema | NotGiven:
    """A ToolsSchema (a list of FunctionSchema is wrapped), or NOT_GIVEN for none."""
    if isinstance(tools, list):
        tools = ToolsSchema(standard_tools=tools)
    if isinstance(tools, ToolsSchema):
        if not tools.standard_tools and not tools.custom_tools:
            return NOT_GIVEN
        return tools
    if tools is None or isinstance(tools, NotGiven):
        return NOT_GIVEN
    raise TypeError(
        f"LLMContext tools must be a ToolsSchema, a list of FunctionSchema or NOT_GIVEN, "
        f"not {type(tools).__name__}"
    )


class LLMContext:
    """Messages, tools and tool choice of one conversation."""

    def __init__(
        self,
        messages: list[LLMContextMessage] | None = None,
        tools: ToolsSchema | list[FunctionSchema] | NotGiven = NOT_GIVEN,
        tool_choice: Any = NOT_GIVEN,
    ) -> None:
        self._messages: list[LLMContextMessage] = messages if messages else []
        self._tools: ToolsSchema | NotGiven = normalize_tools(tools)
        self._tool_choice: Any = tool_choice
        self._builtin_tools: list[FunctionSchema] = []

    # ------------------------------------------------------------------ messages

    @property
    def messages(self) -> list[LLMContextMessage]:
        return self._messages

    def get_messages(self, llm_specific_filter: str | None = None) -> list[LLMContextMessage]:
        """The messages; with a filter, provider-specific ones of other providers are left out."""
        if llm_specific_filter is None:
            return self._messages
        return [
            m
            for m in self._messages
            if not isinstance(m, LLMSpecificMessage) or m.llm == llm_specific_filter
        ]

    def add_message(self, message: LLMContextMessage) -> None:
        self._messages.append(message)

    def add_messages(self, messages: list[LLMContextMessage]) -> None:
        self._messages.extend(messages)

    def set_messages(self, messages: list[LLMContextMessage]) -> None:
        self._messages[:] = messages

    def transform_messages(
        self, transform: Callable[[list[LLMContextMessage]], list[LLMContextMessage]]
    ) -> None:
        self.set_messages(transform(self._messages))

    # ------------------------------------------------------------------ tools

    @property
    def tools(self) -> ToolsSchema | NotGiven:
        return self._tools

    @property
    def tool_choice(self) -> Any:
        return self._tool_choice

    def set_tools(self, tools: ToolsSchema | list[FunctionSchema] | NotGiven = NOT_GIVEN) -> None:
        self._tools = normalize_tools(tools)

    def set_tool_choice(self, tool_choice: Any) -> None:
        self._tool_choice = tool_choice

    @property
    def builtin_tools(self) -> list[FunctionSchema]:
        """Tools the LLM service itself adds to every request on this context (the
        ``cancel_<name>`` tools of functions registered with ``cancellable_by_llm=True``). They
        are sent after :attr:`tools` but are not part of them: ``LLMSetToolsFrame`` leaves them
        alone, and the service sets them again before each completion (callpipe-only)."""
        return self._builtin_tools

    def set_builtin_tools(self, tools: list[FunctionSchema]) -> None:
        self._builtin_tools = tools

    # ------------------------------------------------------------------ for the LLM service

    def messages_for_api(self, llm: str = "openai") -> list[dict[str, Any]]:
        """Chat Completions messages: standard ones without private keys, plus ``llm``'s own."""
        out: list[dict[str, Any]] = []
        for message in self._messages:
            if isinstance(message, LLMSpecificMessage):
                if message.llm == llm and isinstance(message.message, dict):
                    out.append(dict(message.message))
            else:
                out.append(strip_private(message))
        return out

    def tools_for_api(self) -> list[dict[str, Any]] | None:
        tools = self._tools.to_openai() if isinstance(self._tools, ToolsSchema) else None
        if self._builtin_tools:
            builtin = [
                {"type": "function", "function": t.to_default_dict()} for t in self._builtin_tools
            ]
            tools = [*(tools or []), *builtin]
        return tools

    def tool_choice_for_api(self) -> Any:
        return self._tool_choice if is_given(self._tool_choice) else None

    def function_schemas(self) -> list[FunctionSchema]:
        """The advertised standard tools (their handlers, if set, run without registration)."""
        return self._tools.standard_tools if isinstance(self._tools, ToolsSchema) else []

    def copy(self) -> LLMContext:
        return LLMContext(copy.deepcopy(self._messages), self._tools, self._tool_choice)

    def __repr__(self) -> str:
        tools = len(self.function_schemas())
        return f"LLMContext({len(self._messages)} messages, {tools} tools)"


class ProvisionalLLMContext(LLMContext):
    """The context an eager end of turn is answered on: a copy of the conversation's
    ``committed`` context with the predicted words as the last user message.

    The user aggregator writes the turn to ``committed`` once it is confirmed; that is also
    where a confirmed run's tool calls and results belong (callpipe-only; the LLM service
    reads it)."""

    def __init__(self, committed: LLMContext, user_text: str) -> None:
        super().__init__(
            messages=[*committed.messages, {"role": "user", "content": user_text}],
            tools=committed.tools,
            tool_choice=committed.tool_choice,
        )
        self.committed = committed
