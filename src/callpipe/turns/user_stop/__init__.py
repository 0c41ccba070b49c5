"""When a user turn ends (and the bot answers)."""

from callpipe.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy,
)
from callpipe.turns.user_turn_strategies import (
    BaseUserTurnStopStrategy,
    ExternalUserTurnStopStrategy,
    LLMTurnCompletionUserTurnStopStrategy,
    SpeechTimeoutUserTurnStopStrategy,
    UserTurnStoppedParams,
)

__all__ = [
    "BaseUserTurnStopStrategy",
    "ExternalUserTurnStopStrategy",
    "LLMTurnCompletionUserTurnStopStrategy",
    "SpeechTimeoutUserTurnStopStrategy",
    "TurnAnalyzerUserTurnStopStrategy",
    "UserTurnStoppedParams",
]
