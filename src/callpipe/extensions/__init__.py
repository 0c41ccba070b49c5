"""Optional building blocks on top of the processors (mirrors ``pipecat.extensions``)."""
