"""Which call a log line belongs to, without configuring logging.

The transport sets :data:`CALL_TAG` (the call's masked id) in the task that serves the call;
every task the pipeline starts afterwards inherits it, so any callpipe log line can name its
call with :func:`call_tag` — one process carries many calls at once. :func:`mask` (an id) and
:func:`mask_number` / :func:`redact_numbers` (phone numbers) are how those appear in a log line;
they live here, at the bottom of the layers, so every layer masks them the same way.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

CALL_TAG: ContextVar[str] = ContextVar("callpipe_call_tag", default="")


def call_tag() -> str:
    """``"[call CA12…34] "`` inside a call's tasks, else ``""``."""
    tag = CALL_TAG.get()
    return f"[call {tag}] " if tag else ""


def mask(value: str | None) -> str | None:
    """Keep identifiers recognisable in logs without printing them whole."""
    if not value:
        return value
    if len(value) <= 6:
        return "***"
    shown = f"{value[:4]}…{value[-2:]}"
    # Ids come from the network: escape control characters so none can forge a log line.
    if shown.isprintable():
        return shown
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in shown)


def mask_number(number: str) -> str:
    """A phone number fit for logs: the last 4 digits only."""
    return "…" + number[-4:] if len(number) > 4 else "…"


_NUMBER_LIKE = re.compile(r"\+?\d[\d \-]{5,}\d")


def redact_numbers(text: str) -> str:
    """``text`` (e.g. a provider's error, which may quote the number) with numbers masked."""
    return _NUMBER_LIKE.sub(lambda m: mask_number(m.group().replace(" ", "")), text)
