"""MiniMax text-to-speech: ``MiniMaxHttpTTSService`` (T2A v2 over HTTP)."""
