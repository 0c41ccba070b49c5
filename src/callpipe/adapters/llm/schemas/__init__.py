"""Tool schemas: :class:`FunctionSchema` (one function) and :class:`ToolsSchema` (the set)."""

from callpipe.adapters.llm.schemas.direct_function import (
    DirectFunctionWrapper,
    ToolOptions,
    tool_options,
)
from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import AdapterType, ToolsSchema

__all__ = [
    "AdapterType",
    "DirectFunctionWrapper",
    "FunctionSchema",
    "ToolOptions",
    "ToolsSchema",
    "tool_options",
]
