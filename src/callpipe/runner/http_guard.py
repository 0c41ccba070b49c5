"""Small guards for the runner's HTTP routes: API-key checks, no API docs in production, safe logs.

``CALLPIPE_API_KEY`` is the runner's one operator credential, sent as ``Authorization: Bearer``:
``POST /start`` needs it outside local mode (it mints stream tokens, i.e. bot sessions), and
``/metrics`` and ``/status`` need it whenever it is set (they are open when it is not, so a
scraper on a private network works without configuration).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from callpipe.runner.security import safe_equal

logger = logging.getLogger(__name__)

API_KEY_ENV = "CALLPIPE_API_KEY"
MAX_LOGGED_CHARS = 80


def bearer(request: Request) -> str | None:
    """The credential of an ``Authorization: Bearer`` header, if any."""
    value = request.headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def api_key_refusal(request: Request, api_key: str | None, *, route: str) -> JSONResponse | None:
    """None when ``request`` carries ``api_key``; else the 401/403 answer to send."""
    if not api_key:
        return JSONResponse(
            {"error": f"{route} needs {API_KEY_ENV} on the server (or local mode)"},
            status_code=403,
        )
    presented = bearer(request)
    if presented is None or not safe_equal(presented, api_key):
        return JSONResponse(
            {"error": "missing or wrong API key"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None


def remove_api_docs(app: FastAPI) -> None:
    """Stop serving ``/docs``, ``/redoc`` and ``/openapi.json`` (they map the attack surface).

    FastAPI adds those routes when the app is built, so an app created by the user (the runner's
    module-level ``app``) has them already: drop the routes and the URLs.
    """
    paths = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    paths.discard(None)
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in paths]
    app.openapi_url = app.docs_url = app.redoc_url = None
    app.swagger_ui_oauth2_redirect_url = None


def log_safe(value: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """An attacker-supplied string fit for one log line: control characters escaped, bounded."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


async def client_gone(request: Request, exc: Exception) -> Response:
    """A route read a body its client stopped sending (it hung up, or the body deadline in
    :mod:`callpipe.runner.limits` cut it off): nobody is left to answer, and it is no error."""
    logger.debug("%s %s: client gone while sending its body", request.method, request.url.path)
    return Response(status_code=400)
