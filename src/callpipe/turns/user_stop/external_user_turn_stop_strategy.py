"""Turn ends decided outside the aggregator (1.14 module path)."""

from callpipe.turns.user_turn_strategies import ExternalUserTurnStopStrategy

__all__ = ["ExternalUserTurnStopStrategy"]
