"""Crusoe Managed Inference: LLM over its OpenAI-compatible API."""
