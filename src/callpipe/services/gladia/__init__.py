"""Gladia speech-to-text over its live (v2) API: an HTTP session start, then a WebSocket."""
