"""Camb.ai text-to-speech: ``CambTTSService`` (MARS models over streamed HTTP)."""
