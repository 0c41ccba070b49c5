"""SambaNova: LLM over its OpenAI-compatible API."""
