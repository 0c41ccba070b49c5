"""Resemble AI: streaming text-to-speech over its WebSocket."""
