"""Mistral AI: LLM over its OpenAI-compatible API; Voxtral realtime transcription and speech."""
