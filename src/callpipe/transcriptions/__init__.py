"""Pipecat path for language tags (``callpipe.transcriptions.language.Language``)."""
