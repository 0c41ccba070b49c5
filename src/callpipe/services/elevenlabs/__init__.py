"""ElevenLabs text-to-speech over its multi-context WebSocket API."""
