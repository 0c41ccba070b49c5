"""Turn ends that answer the STT's eager end of turn ahead of time (1.14 module path)."""

from callpipe.turns.user_turn_strategies import EagerUserTurnStopStrategy

__all__ = ["EagerUserTurnStopStrategy"]
