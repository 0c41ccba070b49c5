"""Speechify text-to-speech: ``SpeechifyHttpTTSService`` (streamed audio with word timing)."""
