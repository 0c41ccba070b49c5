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

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from callpipe.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


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
