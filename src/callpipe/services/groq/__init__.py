"""Groq: LLM, Whisper speech-to-text and Orpheus text-to-speech over its OpenAI-compatible API."""
