"""Whether a committed transcript still fits the eager one an answer was made for (1.14
module path)."""

from callpipe.turns.user_turn_strategies import EagerMatchPolicy, ExactMatch, NormalizedMatch

__all__ = ["EagerMatchPolicy", "ExactMatch", "NormalizedMatch"]
