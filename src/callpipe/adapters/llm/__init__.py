"""LLM adapters: provider-neutral schemas and their translation to provider wire formats."""
