"""Deepgram Flux: conversational speech-to-text with its own turn detection (``/v2/listen``)."""
