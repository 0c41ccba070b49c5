"""Speech and language services: STT, LLM and TTS, one package per provider.

Providers talk plain HTTP (httpx) and WebSocket (websockets), so no provider SDK is needed.
"""
