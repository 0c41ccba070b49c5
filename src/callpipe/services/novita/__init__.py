"""Novita AI: LLM over its OpenAI-compatible API."""
