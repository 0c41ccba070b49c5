"""Pipecat's older path of the per-provider LLM adapters (``pipecat.adapters.services``,
deprecated in 1.14): the same modules as :mod:`callpipe.adapters.llm.services`."""
