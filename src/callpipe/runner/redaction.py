"""Keep stream tokens and bearer credentials out of the server's logs.

The runner carries each call's one-time stream token in the WebSocket path (``/ws/<token>``;
Twilio forbids query strings there), in a ``?token=`` query or a ``callpipe_token`` stream
parameter, and uvicorn logs every WebSocket request line at INFO. With ``-v`` the WebSocket
library also logs every request header (``Authorization: Bearer ...``) and frame. A token is a
credential until it expires and an API key for good, so both are redacted in the server's
records before any handler sees them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_TOKEN = re.compile(
    r"(/ws/)[^/?#\s\"']+"
    r"|([?&](?:token|callpipe_token)=)[^&#\s\"']+"
    r"|(\bBearer\s+|\bBasic\s+)[^\s\"',]+"
    r"|(\\?\"callpipe_token\\?\"\s*:\s*\\?\")[^\"\\]+",
    re.IGNORECASE,
)

_SERVER_LOGGERS = (
    "uvicorn.error",
    "uvicorn.access",
    "websockets.server",
    "websockets.protocol",
    "websockets.client",
)


def redact_tokens(text: str) -> str:
    """``/ws/a.b?token=xyz`` → ``/ws/<token>?token=<token>``; ``Bearer k`` → ``Bearer <token>``."""
    return _TOKEN.sub(lambda m: (m[1] or m[2] or m[3] or m[4]) + "<token>", text)


class StreamTokenFilter(logging.Filter):
    """Rewrites stream tokens in a record's message and arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        return True


def _redact_arg(value: Any) -> Any:
    return redact_tokens(value) if isinstance(value, str) else value


def install_token_redaction() -> None:
    """Add the filter to uvicorn's loggers (idempotent; logging config keeps logger filters)."""
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, StreamTokenFilter) for f in logger.filters):
            logger.addFilter(StreamTokenFilter())
