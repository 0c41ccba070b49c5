"""Older Pipecat path of the tool schemas (``pipecat.adapters.schemas``); same classes."""
