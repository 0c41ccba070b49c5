"""Mute the caller during the bot"s first speech (1.14 module path)."""

from callpipe.turns.user_mute.strategies import FirstSpeechUserMuteStrategy

__all__ = ["FirstSpeechUserMuteStrategy"]
