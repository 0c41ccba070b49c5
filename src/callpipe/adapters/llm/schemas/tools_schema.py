"""ToolsSchema: the set of tools advertised to the model, plus provider-specific extras.

``to_openai()`` is the one translation callpipe needs (every LLM service it ships speaks the
Chat Completions format); ``custom_tools[AdapterType.OPENAI]`` entries are appended as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from callpipe.adapters.llm.schemas.direct_function import DirectFunction, DirectFunctionWrapper
from callpipe.adapters.llm.schemas.function_schema import FunctionSchema


class AdapterType(Enum):
    """Which provider family a custom (non-standard) tool belongs to."""

    GEMINI = "gemini"
    OPENAI = "openai"


class ToolsSchema:
    """Standard :class:`FunctionSchema` tools and per-provider custom tools."""

    def __init__(
        self,
        standard_tools: Sequence[FunctionSchema | DirectFunction],
        custom_tools: dict[AdapterType, list[dict[str, Any]]] | None = None,
    ) -> None:
        schemas: list[FunctionSchema] = []
        direct: list[DirectFunctionWrapper] = []
        for tool in standard_tools:
            if isinstance(tool, FunctionSchema):
                schemas.append(tool)
            elif callable(tool):
                wrapper = DirectFunctionWrapper(tool)
                direct.append(wrapper)
                schemas.append(wrapper.to_function_schema())
            else:
                raise TypeError(
                    f"ToolsSchema takes FunctionSchema objects or async functions, "
                    f"not {type(tool).__name__}"
                )
        self._standard_tools = schemas
        self._direct_functions = direct
        self._custom_tools = custom_tools

    @property
    def standard_tools(self) -> list[FunctionSchema]:
        return self._standard_tools

    @property
    def direct_functions(self) -> list[DirectFunctionWrapper]:
        return self._direct_functions

    @property
    def custom_tools(self) -> dict[AdapterType, list[dict[str, Any]]] | None:
        return self._custom_tools

    @custom_tools.setter
    def custom_tools(self, value: dict[AdapterType, list[dict[str, Any]]]) -> None:
        self._custom_tools = value

    def to_openai(self) -> list[dict[str, Any]]:
        """Chat Completions ``tools``: one ``{"type": "function", ...}`` entry per tool."""
        tools: list[dict[str, Any]] = [
            {"type": "function", "function": tool.to_default_dict()}
            for tool in self._standard_tools
        ]
        if self._custom_tools:
            tools.extend(self._custom_tools.get(AdapterType.OPENAI, []))
        return tools

    def __repr__(self) -> str:
        return f"ToolsSchema({[t.name for t in self._standard_tools]})"
