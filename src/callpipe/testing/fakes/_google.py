"""What the fakes of Google's APIs share: the error body they answer with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


def google_rpc_error(
    status: int,
    message: str,
    reason: str | None = None,
    *,
    service: str | None = None,
    names: Mapping[int, str] = STATUS_NAMES,
) -> JSONResponse:
    """A ``google.rpc.Status`` error in JSON with HTTP ``status``: its name from ``names``
    (``INTERNAL`` for others), and with ``reason`` an ``ErrorInfo`` detail (naming ``service``
    in its metadata when given)."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": names.get(status, "INTERNAL"),
    }
    if reason:
        info: dict[str, Any] = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
        }
        if service is not None:
            info["metadata"] = {"service": service}
        error["details"] = [info]
    return JSONResponse({"error": error}, status_code=status)
