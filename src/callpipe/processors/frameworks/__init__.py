"""Integrations with other frameworks' protocols (Pipecat's ``processors.frameworks`` path)."""
