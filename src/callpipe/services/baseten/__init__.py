"""Baseten Model APIs: LLM over its OpenAI-compatible API."""
