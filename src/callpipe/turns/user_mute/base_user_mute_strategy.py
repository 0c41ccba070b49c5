"""Base of the mute strategies (1.14 module path)."""

from callpipe.turns.user_mute.strategies import BaseUserMuteStrategy

__all__ = ["BaseUserMuteStrategy"]
