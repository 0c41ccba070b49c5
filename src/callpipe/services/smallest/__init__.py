"""Smallest AI: Pulse speech-to-text and Lightning text-to-speech over WebSockets, and the
Electron LLM over its OpenAI-compatible API."""
