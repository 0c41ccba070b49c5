"""Observers that write what they see to stdlib ``logging`` (at DEBUG), as in Pipecat 1.x."""
