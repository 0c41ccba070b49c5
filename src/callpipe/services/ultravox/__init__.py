"""Ultravox Realtime (speech to speech): a call created over HTTP, then joined by WebSocket."""
