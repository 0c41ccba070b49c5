"""A component of your own decides when the turn is complete (1.14 module path)."""

from callpipe.turns.user_turn_strategies import ExternalUserTurnCompletionStopStrategy

__all__ = ["ExternalUserTurnCompletionStopStrategy"]
