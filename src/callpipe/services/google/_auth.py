"""Google Cloud credentials and addresses for the services that use Google's gRPC SDKs.

:func:`load_credentials` returns google-auth credentials and the project they belong to, from a
service account's JSON (``credentials=``), its file (``credentials_path=``) or, with neither,
Application Default Credentials (``$GOOGLE_APPLICATION_CREDENTIALS``, gcloud's login, a cloud
machine's account). The SDK signs each call with them (over TLS).

A fake's address (``http://127.0.0.1:PORT``, e.g. from ``callpipe fakes``) means an unencrypted
channel to that host and port with anonymous credentials: :func:`insecure_target` gives its
``host:port``, and :func:`anonymous_credentials` the credentials.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from callpipe.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

    from callpipe.services.ai_service import AIService

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

TOKEN_MARGIN_SECS = 300.0
"""A token with less life left than this is refreshed before a request."""


def load_credentials(
    owner: str, credentials: str | None, credentials_path: str | None
) -> tuple[Credentials, str | None]:
    """``(credentials, project id)`` from a service account's JSON or file, else Application
    Default Credentials. Raises ConfigurationError (naming ``owner``) when none are usable."""
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.oauth2 import service_account
    except ImportError as exc:
        raise MissingDependencyError("google-auth (Google Cloud credentials)", "google") from exc
    # google-auth leaves these constructors unannotated.
    account: Any = service_account.Credentials
    try:
        if credentials:
            info = json.loads(credentials)
            found: Credentials = account.from_service_account_info(info, scopes=list(SCOPES))
            return found, _project_of(info)
        if credentials_path:
            with open(credentials_path, encoding="utf-8") as file:
                info = json.load(file)
            found = account.from_service_account_info(info, scopes=list(SCOPES))
            return found, _project_of(info)
        found, project = google.auth.default(scopes=list(SCOPES))
    except (ValueError, OSError, DefaultCredentialsError) as exc:
        raise ConfigurationError(f"{owner}: unusable Google credentials: {exc}") from exc
    return found, project if isinstance(project, str) and project else None


def _project_of(info: Any) -> str | None:
    project = info.get("project_id") if isinstance(info, dict) else None
    return project if isinstance(project, str) and project else None


def anonymous_credentials() -> Credentials:
    """Credentials that sign nothing (for a fake on an unencrypted channel)."""
    try:
        from google.auth import credentials
    except ImportError as exc:
        raise MissingDependencyError("google-auth (Google Cloud credentials)", "google") from exc
    anonymous: Any = credentials.AnonymousCredentials  # unannotated in google-auth
    found: Credentials = anonymous()
    return found


def insecure_target(address: str) -> str | None:
    """``host:port`` of an ``http://`` address (a fake's; served without TLS); None for any
    other address (a Google endpoint, reached over TLS)."""
    parts = urlsplit(address)
    if parts.scheme.lower() != "http" or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or 80}"


def expires_soon(creds: Credentials) -> bool:
    """Whether the credentials' token has less than :data:`TOKEN_MARGIN_SECS` left."""
    expiry = creds.expiry
    if expiry is None:
        return False
    # google-auth keeps the expiry as a naive UTC datetime.
    left = expiry.replace(tzinfo=UTC) - datetime.now(UTC)
    return bool(left.total_seconds() < TOKEN_MARGIN_SECS)


async def refresh_token(
    service: AIService, creds: Credentials, key_hint: str
) -> Literal["fresh", "refused", "unreachable"]:
    """Refresh the credentials' token (in a thread) unless it is valid and not about to
    expire. A refusal is reported to ``service`` as fatal, a network failure as not."""
    if creds.valid and not expires_soon(creds):
        return "fresh"
    from google.auth.exceptions import RefreshError, TransportError
    from google.auth.transport.requests import Request

    try:
        await asyncio.to_thread(creds.refresh, Request())
    except RefreshError as exc:
        await service.report_error(
            f"{service}: Google refused the credentials: {exc}. {key_hint}",
            fatal=True,
            reason="auth",
        )
        return "refused"
    except (TransportError, OSError) as exc:
        await service.report_error(
            f"{service}: could not get a Google access token: {exc}", reason="network"
        )
        return "unreachable"
    return "fresh"
