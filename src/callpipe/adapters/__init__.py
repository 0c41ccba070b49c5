"""Provider-neutral tool descriptions (Pipecat's ``pipecat.adapters`` paths)."""
