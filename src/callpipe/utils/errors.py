"""``ErrorCategory``: why an operation failed, whatever the provider (Pipecat 1.14's names).

``ErrorFrame.category`` carries one. callpipe's services set it when they report an error:
from the HTTP status the provider answered (:func:`classify_http_status_code`), else from the
kind of failure they report (credentials refused, connection lost, ...). A bot's error handler
can then tell "fix the key" from "try again later" without parsing messages.
"""

from __future__ import annotations

import re
import socket
from enum import Enum

import httpx
from websockets.exceptions import InvalidStatus


class ErrorCategory(Enum):
    """The kind of failure (see the module docstring)."""

    UNKNOWN = "unknown"
    AUTHENTICATION = "authentication"
    """Credentials missing or refused."""
    AUTHORIZATION = "authorization"
    """Credentials accepted, but not for this resource."""
    INVALID_REQUEST = "invalid_request"
    """A malformed request, or one naming something that does not exist (a model, a voice)."""
    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    """The account's credit or allowance is used up."""
    CONNECTIVITY = "connectivity"
    """The provider could not be reached, or the connection was lost."""
    SERVER = "server"
    """The provider failed internally (HTTP 5xx)."""
    APPLICATION = "application"
    """The application's own code failed (e.g. a function-call handler), not the provider."""

    @property
    def is_permanent(self) -> bool:
        """True when retrying cannot help until credentials or settings change."""
        return self in (
            ErrorCategory.AUTHENTICATION,
            ErrorCategory.AUTHORIZATION,
            ErrorCategory.INVALID_REQUEST,
        )


_BY_STATUS = {
    400: ErrorCategory.INVALID_REQUEST,
    401: ErrorCategory.AUTHENTICATION,
    402: ErrorCategory.QUOTA,
    403: ErrorCategory.AUTHORIZATION,
    404: ErrorCategory.INVALID_REQUEST,
    422: ErrorCategory.INVALID_REQUEST,
    429: ErrorCategory.RATE_LIMIT,
}

_BY_REASON = {
    "auth": ErrorCategory.AUTHENTICATION,
    "network": ErrorCategory.CONNECTIVITY,
    "disconnected": ErrorCategory.CONNECTIVITY,
    "settings": ErrorCategory.INVALID_REQUEST,
}
"""callpipe's service error reasons (the ``reason`` label of ``callpipe_service_errors_total``)."""

_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


def classify_http_status_code(status_code: int) -> ErrorCategory:
    """The category an HTTP status means for any provider (UNKNOWN when it means none)."""
    category = _BY_STATUS.get(status_code)
    if category is not None:
        return category
    return ErrorCategory.SERVER if 500 <= status_code < 600 else ErrorCategory.UNKNOWN


def extract_http_status_code(exception: BaseException) -> int | None:
    """The HTTP status an httpx error response or a refused WebSocket handshake carries
    (None for any other exception)."""
    if isinstance(exception, httpx.HTTPStatusError):
        return exception.response.status_code
    if isinstance(exception, InvalidStatus):
        return exception.response.status_code
    return None


def classify_http_exception(exception: BaseException) -> ErrorCategory:
    """The category of the HTTP status ``exception`` carries, else of the failure's kind
    (:func:`classify_exception`)."""
    status = extract_http_status_code(exception)
    if status is not None:
        return classify_http_status_code(status)
    if isinstance(exception, httpx.TransportError):
        return ErrorCategory.CONNECTIVITY
    return classify_exception(exception)


def classify_exception(exception: BaseException) -> ErrorCategory:
    """CONNECTIVITY for a connection failure or timeout, else UNKNOWN."""
    if isinstance(exception, (ConnectionError, TimeoutError, socket.gaierror)):
        return ErrorCategory.CONNECTIVITY
    return ErrorCategory.UNKNOWN


def classify_service_error(message: str, reason: str) -> ErrorCategory:
    """The category of a service's error report: the HTTP status its message quotes
    (``"... HTTP 429 from ..."``), else its ``reason``."""
    match = _HTTP_STATUS.search(message)
    if match is not None:
        category = classify_http_status_code(int(match.group(1)))
        if category is not ErrorCategory.UNKNOWN:
            return category
    return _BY_REASON.get(reason, ErrorCategory.UNKNOWN)
