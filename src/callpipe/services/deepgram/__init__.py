"""Deepgram speech-to-text over its live WebSocket API."""
