"""Where callpipe's processors and services have always imported :class:`BaseObject` from.

The class lives in :mod:`callpipe.utils.base_object` (Pipecat's path, and low enough in the
layers for any part to use); this module names the same objects.
"""

from callpipe.utils.base_object import (
    BaseObject,
    EventHandler,
    cancel_and_wait,
    create_logged_task,
)

__all__ = ["BaseObject", "EventHandler", "cancel_and_wait", "create_logged_task"]
