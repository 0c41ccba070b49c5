"""Barge-in only after a few words (1.14 module path)."""

from callpipe.turns.user_turn_strategies import MinWordsUserTurnStartStrategy

__all__ = ["MinWordsUserTurnStartStrategy"]
