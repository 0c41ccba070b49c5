"""Cartesia text-to-speech over its WebSocket API."""
