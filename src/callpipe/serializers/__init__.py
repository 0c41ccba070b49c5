"""Wire codecs between provider WebSocket dialects and frames (sans-I/O; see base_serializer)."""
