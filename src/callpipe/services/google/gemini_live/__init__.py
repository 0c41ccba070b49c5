"""Gemini Live (speech to speech) over WebSocket: :mod:`.llm`."""
