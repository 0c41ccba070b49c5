"""When the user aggregator ignores the caller (no barge-in, no transcripts taken)."""

from callpipe.turns.user_mute.strategies import (
    AlwaysUserMuteStrategy,
    BaseUserMuteStrategy,
    FirstSpeechUserMuteStrategy,
    FunctionCallUserMuteStrategy,
    MuteUntilFirstBotCompleteUserMuteStrategy,
)

__all__ = [
    "AlwaysUserMuteStrategy",
    "BaseUserMuteStrategy",
    "FirstSpeechUserMuteStrategy",
    "FunctionCallUserMuteStrategy",
    "MuteUntilFirstBotCompleteUserMuteStrategy",
]
