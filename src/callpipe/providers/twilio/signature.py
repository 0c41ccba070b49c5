"""Twilio webhook signatures, exactly as Twilio's ``RequestValidator`` computes them.

HMAC-SHA1 of the URL followed by the sorted ``name + value`` form parameters, keyed with the Auth
Token; HMAC-SHA256 with a webhook SharedKey when ``X-Twilio-Webhooks-Signature-Settings`` names
it; JSON webhooks through ``bodySHA256`` in the signed URL. SignalWire signs its Compatibility
(cXML) webhooks the same way with its own key, so it reuses these functions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qs, urlparse

from callpipe.providers.base import safe_equal

TWILIO_HMAC_SHA1 = "HMAC_SHA1"
TWILIO_HMAC_SHA256 = "HMAC_SHA256"
_TWILIO_HASHES = {TWILIO_HMAC_SHA1: hashlib.sha1, TWILIO_HMAC_SHA256: hashlib.sha256}


def twilio_signature(
    auth_token: str,
    url: str,
    params: Iterable[tuple[str, str]],
    algorithm: str = TWILIO_HMAC_SHA1,
) -> str:
    """Twilio: base64 HMAC of the URL followed by ``name + value`` for each parameter.

    As Twilio's SDK does: names sorted and de-duplicated, each name's values sorted and
    de-duplicated. ``algorithm`` is ``HMAC_SHA1`` (Auth Token) or ``HMAC_SHA256`` (a webhook
    SharedKey, named by the ``X-Twilio-Webhooks-Signature-Settings`` header).
    """
    hash_function = _TWILIO_HASHES.get(algorithm.upper())
    if hash_function is None:
        raise ValueError(f"unsupported Twilio signature algorithm: {algorithm}")
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    data = url + "".join(
        name + value for name in sorted(grouped) for value in sorted(grouped[name])
    )
    key = auth_token.encode("utf-8", "surrogatepass")
    digest = hmac.new(key, data.encode("utf-8", "surrogatepass"), hash_function).digest()
    return base64.b64encode(digest).decode("ascii")


def twilio_signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named by ``X-Twilio-Webhooks-Signature-Settings`` (absent: HMAC_SHA1)."""
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip()
    return TWILIO_HMAC_SHA1


def url_port_variants(url: str) -> list[str]:
    """Twilio signs the URL as configured: with or without the default port (both tried)."""
    parts = urlparse(url)
    try:
        port = parts.port
    except ValueError:  # not a number: nothing to add or remove
        return [url]
    if port:
        return [parts._replace(netloc=parts.netloc.split(":")[0]).geturl(), parts.geturl()]
    default = 443 if parts.scheme == "https" else 80
    return [parts.geturl(), parts._replace(netloc=f"{parts.netloc}:{default}").geturl()]


def verify_twilio(
    auth_token: str,
    url: str,
    params: list[tuple[str, str]],
    signature: str | None,
    *,
    algorithm: str = TWILIO_HMAC_SHA1,
    body: bytes | None = None,
) -> bool:
    """Twilio's ``RequestValidator.validate``, byte for byte, for a form or a JSON webhook.

    ``params`` are the form fields of a form POST (empty for GET). ``body`` is the raw body of a
    request that is *not* form-encoded (Twilio's JSON webhooks): Twilio then signs the URL
    carrying ``bodySHA256`` (hex SHA-256 of the body), so the hash must be in the URL and
    match; a signature over a URL without it does not cover the body and is refused.
    """
    if not signature or algorithm.upper() not in _TWILIO_HASHES:
        return False
    if body is not None:
        declared = parse_qs(urlparse(url).query).get("bodySHA256")
        if not declared or not safe_equal(hashlib.sha256(body).hexdigest(), declared[0]):
            return False
        params = []
    ok = False
    for variant in url_port_variants(url):
        ok |= safe_equal(twilio_signature(auth_token, variant, params, algorithm), signature)
    return ok
