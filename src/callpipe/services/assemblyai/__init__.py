"""AssemblyAI speech-to-text over its Universal-Streaming (v3) WebSocket API."""
