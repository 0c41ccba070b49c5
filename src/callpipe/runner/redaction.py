"""Keep stream tokens out of the server's logs.

The runner carries each call's one-time stream token in the WebSocket path (``/ws/<token>``;
Twilio forbids query strings there) or in a ``?token=`` query, and uvicorn logs every WebSocket
request line at INFO. A token is a credential until it expires, so the path is redacted in
uvicorn's records before any handler sees them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_TOKEN = re.compile(r"(/ws/)[^/?#\s\"']+|([?&](?:token|callpipe_token)=)[^&#\s\"']+")

_SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")


def redact_tokens(text: str) -> str:
    """``/ws/abc.def?token=xyz`` → ``/ws/<token>?token=<token>``."""
    return _TOKEN.sub(lambda m: (m[1] or m[2]) + "<token>", text)


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
