"""Which call a log line belongs to, without configuring logging.

The transport sets :data:`CALL_TAG` (the call's masked id) in the task that serves the call;
every task the pipeline starts afterwards inherits it, so any callpipe log line can name its
call with :func:`call_tag` — one process carries many calls at once.
"""

from __future__ import annotations

from contextvars import ContextVar

CALL_TAG: ContextVar[str] = ContextVar("callpipe_call_tag", default="")


def call_tag() -> str:
    """``"[call CA12…34] "`` inside a call's tasks, else ``""``."""
    tag = CALL_TAG.get()
    return f"[call {tag}] " if tag else ""
