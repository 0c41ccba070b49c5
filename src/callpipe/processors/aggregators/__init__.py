"""Aggregators: turn streams of frames (transcripts, spoken text) into LLM context messages."""
