"""When a user turn ends (and the bot answers)."""

from callpipe.turns.user_turn_strategies import (
    BaseUserTurnStopStrategy,
    ExternalUserTurnStopStrategy,
    SpeechTimeoutUserTurnStopStrategy,
)

__all__ = [
    "BaseUserTurnStopStrategy",
    "ExternalUserTurnStopStrategy",
    "SpeechTimeoutUserTurnStopStrategy",
]
