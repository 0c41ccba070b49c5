"""OpenAI (and OpenAI-compatible) services: chat completions LLM, speech, transcription."""
