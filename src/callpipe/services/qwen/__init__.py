"""Qwen (Alibaba Cloud Model Studio): LLM over its OpenAI-compatible API."""
