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


def websocket_origin(address: str) -> str:
    """A WebSocket base URL from a host with an optional scheme, port and path, as Pipecat 1.14's
    ``base_url`` of a streaming service is given: ``ws://`` or ``http://`` stay unencrypted
    (``ws://``), anything else, a bare host included, is ``wss://``."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        return f"wss://{address}".rstrip("/")
    insecure = scheme.lower() in ("ws", "http")
    return f"{'ws' if insecure else 'wss'}://{rest}".rstrip("/")
