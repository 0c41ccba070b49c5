"""Sarvam AI: streaming speech-to-text, Bulbul text-to-speech and its OpenAI-compatible LLM."""
