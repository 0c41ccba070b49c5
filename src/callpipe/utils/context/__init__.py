"""Helpers about the conversation context that sit below the processors (no callpipe imports)."""
