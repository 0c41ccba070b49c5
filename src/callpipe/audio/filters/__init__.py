"""Audio filters a transport runs on caller audio (``audio_in_filter``) or bot audio."""
