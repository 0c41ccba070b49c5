"""Voice activity detection: the analyzer state machine and the Silero model."""
