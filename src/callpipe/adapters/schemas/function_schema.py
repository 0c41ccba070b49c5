"""Re-export: :mod:`callpipe.adapters.llm.schemas.function_schema` (Pipecat's older path)."""

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema

__all__ = ["FunctionSchema"]
