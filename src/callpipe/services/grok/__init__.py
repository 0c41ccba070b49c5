"""The older home of the xAI Grok LLM (see :mod:`callpipe.services.xai`)."""
