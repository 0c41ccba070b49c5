"""When a user turn ends (and the bot answers)."""

from callpipe.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy,
)
from callpipe.turns.user_turn_strategies import (
    BaseUserTurnStopStrategy,
    DeferredUserTurnStopStrategy,
    EagerMatchPolicy,
    EagerUserTurnStopStrategy,
    ExactMatch,
    ExternalUserTurnCompletionStopStrategy,
    ExternalUserTurnStopStrategy,
    LLMTurnCompletionUserTurnStopStrategy,
    NormalizedMatch,
    SpeechTimeoutUserTurnStopStrategy,
    UserTurnStoppedParams,
    deferred,
)

__all__ = [
    "BaseUserTurnStopStrategy",
    "DeferredUserTurnStopStrategy",
    "EagerMatchPolicy",
    "EagerUserTurnStopStrategy",
    "ExactMatch",
    "ExternalUserTurnCompletionStopStrategy",
    "ExternalUserTurnStopStrategy",
    "LLMTurnCompletionUserTurnStopStrategy",
    "NormalizedMatch",
    "SpeechTimeoutUserTurnStopStrategy",
    "TurnAnalyzerUserTurnStopStrategy",
    "UserTurnStoppedParams",
    "deferred",
]
