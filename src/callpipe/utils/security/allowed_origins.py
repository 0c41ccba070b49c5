"""Which browser origins may open a WebSocket: Pipecat 1.14's ``allowed_origins`` contract.

A browser always sends ``Origin`` with a WebSocket upgrade, so a page on another site cannot
drive a bot unless its origin is listed. The list comes from ``allowed_origins=`` (the
transport's params, the runner's ``--allowed-origins``) or, by default, from
``CALLPIPE_ALLOWED_ORIGINS`` (``PIPECAT_ALLOWED_ORIGINS`` is read too, so a Pipecat deployment's
environment keeps working): comma-separated, e.g. ``https://app.example.com,http://localhost:3000``.
An empty list allows every origin.

Origins are compared as browsers write them, scheme and host (and a port other than the
scheme's default), case-insensitively; a trailing ``/`` in a configured entry is ignored.
"""

from __future__ import annotations

import os

ALLOWED_ORIGINS_ENV = "CALLPIPE_ALLOWED_ORIGINS"
PIPECAT_ALLOWED_ORIGINS_ENV = "PIPECAT_ALLOWED_ORIGINS"


def parse_origins(value: str) -> list[str]:
    """The entries of a comma-separated list, stripped, empty ones dropped."""
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def default_allowed_origins() -> list[str]:
    """The allowed origins from the environment (``CALLPIPE_ALLOWED_ORIGINS``, else
    ``PIPECAT_ALLOWED_ORIGINS``); empty when neither is set: every origin allowed."""
    value = os.environ.get(ALLOWED_ORIGINS_ENV) or os.environ.get(PIPECAT_ALLOWED_ORIGINS_ENV, "")
    return parse_origins(value)


def _normalise(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def is_origin_allowed(origin: str | None, allowed_origins: list[str]) -> bool:
    """True when ``allowed_origins`` is empty or lists ``origin`` (the ``Origin`` header;
    None or ``""`` when absent, which a non-empty list refuses)."""
    if not allowed_origins:
        return True
    if not origin:
        return False
    return _normalise(origin) in {_normalise(entry) for entry in allowed_origins}
