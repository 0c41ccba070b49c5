"""Nebius Token Factory: LLM over its OpenAI-compatible API."""
