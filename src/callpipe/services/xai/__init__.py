"""xAI: Grok LLM over its OpenAI-compatible API."""
