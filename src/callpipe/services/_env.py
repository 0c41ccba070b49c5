"""Provider base URLs from the environment, so a bot can be pointed at local fakes unchanged.

``OPENAI_BASE_URL`` is the OpenAI SDK's own variable; ``CALLPIPE_DEEPGRAM_URL``,
``CALLPIPE_CARTESIA_URL`` and ``CALLPIPE_ELEVENLABS_URL`` are callpipe's (``callpipe fakes``
prints them). An explicit constructor argument always wins.
"""

from __future__ import annotations

import os

OPENAI_BASE_URL_ENV = "OPENAI_BASE_URL"
DEEPGRAM_URL_ENV = "CALLPIPE_DEEPGRAM_URL"
CARTESIA_URL_ENV = "CALLPIPE_CARTESIA_URL"
ELEVENLABS_URL_ENV = "CALLPIPE_ELEVENLABS_URL"


def base_url(explicit: str | None, env_var: str, default: str) -> str:
    """``explicit``, else the non-empty ``env_var``, else ``default`` (without a trailing /)."""
    return (explicit or os.environ.get(env_var, "").strip() or default).rstrip("/")
