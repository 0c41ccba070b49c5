"""Turn starts decided outside the aggregator (1.14 module path)."""

from callpipe.turns.user_turn_strategies import ExternalUserTurnStartStrategy

__all__ = ["ExternalUserTurnStartStrategy"]
