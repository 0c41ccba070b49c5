"""callpipe: real-time voice-AI phone bots."""
