"""Inception: LLM over its OpenAI-compatible API."""
