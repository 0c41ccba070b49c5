"""Pipecat's Daily module path: its names import, a Daily room cannot be joined (see transport)."""
