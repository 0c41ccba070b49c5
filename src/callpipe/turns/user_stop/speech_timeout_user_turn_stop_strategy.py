"""The turn ends a short pause after the caller stopped (1.14 module path)."""

from callpipe.turns.user_turn_strategies import SpeechTimeoutUserTurnStopStrategy

__all__ = ["SpeechTimeoutUserTurnStopStrategy"]
