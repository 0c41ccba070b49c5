"""Small HTTP helpers shared by the HTTP-based services."""

from __future__ import annotations

import json

import httpx


def error_message(status: int, body: bytes) -> str:
    """The provider's own message from a JSON error body (OpenAI/ElevenLabs shapes), else text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or f"HTTP {status}"
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data))
        if isinstance(error, dict):
            message = error.get("message") or error.get("msg") or error.get("detail")
            if message:
                return str(message)[:300]
        elif isinstance(error, str):
            return error[:300]
    return text[:300]


def retry_after_secs(response: httpx.Response, default: float, cap: float) -> float:
    """``Retry-After`` seconds from a 429/503 response, bounded to ``cap`` (calls are live)."""
    value = response.headers.get("retry-after")
    try:
        secs = float(value) if value is not None else default
    except ValueError:
        secs = default
    return max(0.0, min(secs, cap))


def is_retryable(status: int) -> bool:
    return status == 429 or status >= 500
