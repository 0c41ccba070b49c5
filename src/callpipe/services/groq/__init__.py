"""Groq: LLM over its OpenAI-compatible API."""
