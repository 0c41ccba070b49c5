"""The turn starts when voice activity is detected (1.14 module path)."""

from callpipe.turns.user_turn_strategies import VADUserTurnStartStrategy

__all__ = ["VADUserTurnStartStrategy"]
