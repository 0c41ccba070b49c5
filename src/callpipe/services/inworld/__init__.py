"""Inworld text-to-speech: ``InworldTTSService`` (the WebSocket) and ``InworldHttpTTSService``."""
