"""Neuphonic text-to-speech: ``NeuphonicTTSService`` (WebSocket), ``NeuphonicHttpTTSService``."""
