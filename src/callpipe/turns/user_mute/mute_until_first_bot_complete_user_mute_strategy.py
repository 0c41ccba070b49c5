"""Mute the caller until the bot"s first speech was heard (1.14 module path)."""

from callpipe.turns.user_mute.strategies import MuteUntilFirstBotCompleteUserMuteStrategy

__all__ = ["MuteUntilFirstBotCompleteUserMuteStrategy"]
