"""Per-provider LLM adapters (Pipecat's ``pipecat.adapters.llm.services`` path)."""
