"""Pipecat's ``utils.asyncio`` package path (its task manager)."""
