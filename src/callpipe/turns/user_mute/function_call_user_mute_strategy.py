"""Mute the caller while function calls run (1.14 module path)."""

from callpipe.turns.user_mute.strategies import FunctionCallUserMuteStrategy

__all__ = ["FunctionCallUserMuteStrategy"]
