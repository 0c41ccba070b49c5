"""NVIDIA NIM: LLM over its OpenAI-compatible API."""
