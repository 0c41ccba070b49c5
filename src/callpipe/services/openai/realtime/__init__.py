"""OpenAI Realtime (speech to speech) over WebSocket: :mod:`.llm` and its session models."""
