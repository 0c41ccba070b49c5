"""The conversation an LLM sees: OpenAI-format messages and tools, shared by the aggregators.

One ``OpenAILLMContext`` object is shared by the user aggregator (adds what the caller said),
the LLM service (adds tool calls and results) and the assistant aggregator (adds what the
caller heard). Messages are plain dicts in the Chat Completions format so any
OpenAI-compatible server accepts them unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import DataFrame

Message = dict[str, Any]

PRIVATE_KEYS = frozenset({"interrupted"})
"""Keys callpipe adds to messages for its own bookkeeping; never sent to a provider."""


class OpenAILLMContext:
    """Messages + tools (+ ``tool_choice``) for Chat Completions."""

    def __init__(
        self,
        messages: list[Message] | None = None,
        tools: list[dict[str, Any]] | ToolsSchema | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> None:
        self._messages: list[Message] = list(messages or [])
        self.tools: list[dict[str, Any]] | ToolsSchema | None = _tools(tools)
        self.tool_choice = tool_choice

    # ------------------------------------------------------------------ messages

    @property
    def messages(self) -> list[Message]:
        return self._messages

    def get_messages(self) -> list[Message]:
        return self._messages

    def add_message(self, message: Message) -> None:
        self._messages.append(message)

    def add_messages(self, messages: list[Message]) -> None:
        self._messages.extend(messages)

    def set_messages(self, messages: list[Message]) -> None:
        self._messages[:] = list(messages)

    def set_tools(self, tools: list[dict[str, Any]] | ToolsSchema | None) -> None:
        self.tools = _tools(tools)

    def set_tool_choice(self, tool_choice: str | dict[str, Any] | None) -> None:
        self.tool_choice = tool_choice

    def messages_for_api(self) -> list[Message]:
        """A copy of the messages without callpipe's private bookkeeping keys."""
        return [
            {k: v for k, v in m.items() if k not in PRIVATE_KEYS}
            if PRIVATE_KEYS.intersection(m)
            else dict(m)
            for m in self._messages
        ]

    def tools_for_api(self) -> list[dict[str, Any]] | None:
        if isinstance(self.tools, ToolsSchema):
            return self.tools.to_openai() or None
        return self.tools

    def tool_choice_for_api(self) -> Any:
        return self.tool_choice

    def function_schemas(self) -> list[FunctionSchema]:
        return self.tools.standard_tools if isinstance(self.tools, ToolsSchema) else []

    def copy(self) -> OpenAILLMContext:
        return OpenAILLMContext(copy.deepcopy(self._messages), self.tools, self.tool_choice)

    def __repr__(self) -> str:
        tools = len(self.tools_for_api() or [])
        return f"OpenAILLMContext({len(self._messages)} messages, {tools} tools)"

    @staticmethod
    def from_messages(messages: list[Message]) -> OpenAILLMContext:
        return OpenAILLMContext(messages)


def _tools(
    tools: list[dict[str, Any]] | ToolsSchema | None,
) -> list[dict[str, Any]] | ToolsSchema | None:
    if isinstance(tools, ToolsSchema):
        return tools
    return list(tools) if tools else None


@dataclass(slots=True)
class OpenAILLMContextFrame(DataFrame):
    """Run the LLM on this context (pushed by the user aggregator at the end of a turn)."""

    context: OpenAILLMContext = field(default_factory=OpenAILLMContext)
