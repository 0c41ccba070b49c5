"""ToolsSchema: the set of tools advertised to the model, plus provider-specific extras.

``to_openai()`` is the one translation callpipe needs (every LLM service it ships speaks the
Chat Completions format); ``custom_tools[AdapterType.OPENAI]`` entries are appended as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema


class AdapterType(Enum):
    """Which provider family a custom (non-standard) tool belongs to."""

    GEMINI = "gemini"
    OPENAI = "openai"


class ToolsSchema:
    """Standard :class:`FunctionSchema` tools and per-provider custom tools."""

    def __init__(
        self,
        standard_tools: Sequence[FunctionSchema],
        custom_tools: dict[AdapterType, list[dict[str, Any]]] | None = None,
    ) -> None:
        tools = list(standard_tools)
        for tool in tools:
            if not isinstance(tool, FunctionSchema):
                # Pipecat also accepts "direct functions" (schema read from a signature);
                # callpipe does not, and says so rather than guessing.
                raise TypeError(
                    f"ToolsSchema takes FunctionSchema objects, not {type(tool).__name__}"
                )
        self._standard_tools = tools
        self._custom_tools = custom_tools

    @property
    def standard_tools(self) -> list[FunctionSchema]:
        return self._standard_tools

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
