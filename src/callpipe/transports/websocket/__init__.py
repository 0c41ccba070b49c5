"""WebSocket transports (the newer Pipecat module layout)."""
