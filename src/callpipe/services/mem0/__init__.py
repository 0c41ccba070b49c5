"""Mem0 long-term memory: ``Mem0MemoryService`` (the Platform REST API, or a local ``mem0``)."""
