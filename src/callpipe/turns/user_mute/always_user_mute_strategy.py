"""Mute the caller whenever the bot speaks (1.14 module path)."""

from callpipe.turns.user_mute.strategies import AlwaysUserMuteStrategy

__all__ = ["AlwaysUserMuteStrategy"]
