"""Ollama: LLM over its OpenAI-compatible API."""
