"""xAI: the Grok LLM over its OpenAI-compatible API, and xAI's speech services (streaming
speech to text; text to speech over a socket or HTTP)."""
