"""OpenRouter: LLM over its OpenAI-compatible API."""
