"""Fish Audio text-to-speech: ``FishAudioTTSService`` (the live MessagePack WebSocket)."""
