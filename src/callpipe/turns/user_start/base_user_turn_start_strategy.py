"""Base of the start strategies and the params of a started turn (1.14 module path)."""

from callpipe.turns.user_turn_strategies import (
    BaseUserTurnStartStrategy,
    UserTurnStartedParams,
)

__all__ = ["BaseUserTurnStartStrategy", "UserTurnStartedParams"]
