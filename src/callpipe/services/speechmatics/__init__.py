"""Speechmatics speech-to-text over its real-time WebSocket API."""
