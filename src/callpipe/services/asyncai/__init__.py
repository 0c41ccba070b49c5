"""Async (async.com) text-to-speech: ``AsyncAITTSService`` (the WebSocket) and
``AsyncAIHttpTTSService`` (streamed HTTP)."""
