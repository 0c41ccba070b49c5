"""Cerebras: LLM over its OpenAI-compatible API."""
