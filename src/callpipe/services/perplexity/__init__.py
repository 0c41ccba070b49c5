"""Perplexity: LLM over its OpenAI-compatible API."""
