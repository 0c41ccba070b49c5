"""Together AI: LLM over its OpenAI-compatible API, real-time transcription and speech over
its WebSockets."""
