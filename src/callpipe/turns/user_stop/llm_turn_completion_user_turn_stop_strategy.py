"""The LLM's ``●`` marker ends the user turn (1.14 module path)."""

from callpipe.turns.user_turn_strategies import LLMTurnCompletionUserTurnStopStrategy

__all__ = ["LLMTurnCompletionUserTurnStopStrategy"]
