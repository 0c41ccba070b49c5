"""Re-export: :mod:`callpipe.adapters.llm.schemas.direct_function` (Pipecat's older path)."""

from callpipe.adapters.llm.schemas.direct_function import (
    DirectFunction,
    DirectFunctionWrapper,
    ToolOptions,
    tool_options,
)

__all__ = ["DirectFunction", "DirectFunctionWrapper", "ToolOptions", "tool_options"]
