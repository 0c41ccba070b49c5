"""The turn starts with a transcript (1.14 module path)."""

from callpipe.turns.user_turn_strategies import TranscriptionUserTurnStartStrategy

__all__ = ["TranscriptionUserTurnStartStrategy"]
