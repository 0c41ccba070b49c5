"""``deferred(strategy)``: a detector that drives the LLM runs, not the turn's end (1.14 path)."""

from callpipe.turns.user_turn_strategies import DeferredUserTurnStopStrategy, deferred

__all__ = ["DeferredUserTurnStopStrategy", "deferred"]
