"""Re-export: :mod:`callpipe.adapters.llm.schemas.tools_schema` (Pipecat's older path)."""

from callpipe.adapters.llm.schemas.tools_schema import AdapterType, ToolsSchema

__all__ = ["AdapterType", "ToolsSchema"]
