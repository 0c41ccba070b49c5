"""DeepSeek: LLM over its OpenAI-compatible API."""
