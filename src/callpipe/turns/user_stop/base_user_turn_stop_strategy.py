"""Base of the stop strategies and the params of an ended turn (1.14 module path)."""

from callpipe.turns.user_turn_strategies import (
    BaseUserTurnStopStrategy,
    UserTurnStoppedParams,
)

__all__ = ["BaseUserTurnStopStrategy", "UserTurnStoppedParams"]
