"""Rime text-to-speech: ``RimeTTSService`` (the JSON WebSocket) and ``RimeHttpTTSService``."""
