"""Hume text-to-speech: ``HumeTTSService`` (Octave over the streamed JSON endpoint)."""
