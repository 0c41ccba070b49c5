"""Load what a bot's first call would otherwise load on the event loop, before serving.

Building the Silero ONNX session takes about 0.2 s of CPU; done inside the first call it stalls
every call sharing the loop. The runner calls :func:`preload_models` once per process (in
``create_app``, which every worker runs) so no call pays for it. Only models whose module the
bot has imported are loaded: a bot without Silero costs nothing.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["preload_models"]

logger = logging.getLogger(__name__)

_SILERO_MODULE = "callpipe.audio.vad.silero"


def preload_models() -> list[str]:
    """Load the models the bot's imports show it uses; returns their names."""
    loaded: list[str] = []
    if _SILERO_MODULE in sys.modules:
        from callpipe.audio.vad import silero

        if silero.preload():
            loaded.append("silero")
        else:
            logger.warning("Silero VAD imported but its model is missing: callpipe[silero]")
    if loaded:
        logger.debug("preloaded models: %s", ", ".join(loaded))
    return loaded
