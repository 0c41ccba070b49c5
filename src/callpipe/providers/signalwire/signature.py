"""SignalWire webhook signatures (``X-SignalWire-Signature``), keyed with the project's Signing Key.

Two schemes, as SignalWire's SDK validates them:

- Compatibility (cXML) form webhooks: Twilio's scheme, base64 HMAC-SHA1 of the URL followed by the
  sorted ``name + value`` parameters (:func:`~callpipe.providers.twilio.signature.verify_twilio`).
- JSON webhooks: lowercase hex HMAC-SHA1 of the URL followed by the raw body; a JSON object body
  may also be signed with the Compatibility scheme over its fields.

Both try the URL with and without the default port. Never raises on hostile input.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from callpipe.providers.base import SignedWebhook, safe_equal
from callpipe.providers.twilio.signature import url_port_variants, verify_twilio

SIGNATURE_HEADER = "x-signalwire-signature"


def signalwire_json_signature(signing_key: str, url: str, body: bytes) -> str:
    """Hex HMAC-SHA1 of ``url + body`` (SignalWire's scheme for JSON webhooks)."""
    key = signing_key.encode("utf-8", "surrogatepass")
    return hmac.new(key, url.encode("utf-8", "surrogatepass") + body, hashlib.sha1).hexdigest()


def _json_fields(body: bytes) -> list[tuple[str, str]] | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    return [(str(k), v) for k, v in data.items() if isinstance(v, str)]


class SignalWireVerifier:
    """Checks ``X-SignalWire-Signature`` against the project's Signing Key."""

    def __init__(self, signing_key: str) -> None:
        self._key = signing_key

    def verify(self, request: SignedWebhook) -> bool:
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature or not self._key:
            return False
        if request.method != "POST" or request.is_form:
            return verify_twilio(self._key, request.url, request.form, signature)
        ok = False
        for url in url_port_variants(request.url):
            ok |= safe_equal(signalwire_json_signature(self._key, url, request.body), signature)
        if ok:
            return True
        fields = _json_fields(request.body)
        return fields is not None and verify_twilio(self._key, request.url, fields, signature)
