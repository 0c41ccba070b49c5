"""Plivo V3 webhook signatures (``X-Plivo-Signature-V3`` with its nonce)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from callpipe.providers.base import safe_equal


def plivo_v3_signature(
    auth_token: str, method: str, url: str, params: Mapping[str, str | list[str]], nonce: str
) -> str:
    """Plivo V3: base64 HMAC-SHA256 of ``base + "." + nonce``.

    For GET the base is the URL with query and parameters merged as a sorted query string; for
    POST it is the URL (query sorted, then ``?``) followed by the sorted ``key + value`` of the
    form parameters, with a ``.`` between a non-empty query and the parameters.
    """
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query: dict[str, list[str]] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(k, []).append(v)

    def sorted_query(items: Mapping[str, str | list[str]]) -> str:
        out = []
        for key in sorted(items):
            value = items[key]
            values = sorted(value) if isinstance(value, list) else [value]
            out.append("&".join(f"{key}={v}" for v in values))
        return "&".join(out)

    if method.upper() == "GET":
        merged: dict[str, str | list[str]] = {**params, **query}
        q = sorted_query(merged)
        data = f"{base}?{q}" if q else base
    else:
        q = sorted_query(query)
        data = base
        if q or params:
            data += "?" + q
        if q and params:
            data += "."
        for key in sorted(params):
            value = params[key]
            values = sorted(value) if isinstance(value, list) else [value]
            data += "".join(f"{key}{v}" for v in values)
    message = f"{data}.{nonce}".encode("utf-8", "surrogatepass")
    secret = auth_token.encode("utf-8", "surrogatepass")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_plivo_v3(
    auth_token: str,
    method: str,
    url: str,
    params: Mapping[str, str | list[str]],
    nonce: str | None,
    signature_header: str | None,
) -> bool:
    if not nonce or not signature_header:
        return False
    expected = plivo_v3_signature(auth_token, method, url, params, nonce)
    return any(safe_equal(expected, s.strip()) for s in signature_header.split(",")[:8])
