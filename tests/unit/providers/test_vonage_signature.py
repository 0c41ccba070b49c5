"""Vonage signed webhooks: the answer (GET, query payload) and event (POST, body) JWTs.

Tokens are built as Vonage documents them (HS256 with the signature secret, ``iat``,
``payload_hash`` = SHA-256 of the body, or of the query parameters as compact JSON for a GET)
and cross-checked with Vonage's own ``vonage_jwt.verify_signature``. With
``VONAGE_SIGNATURE_SECRET`` set, a Vonage answer webhook is accepted without ``--insecure``.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from callpipe.providers import registry
from callpipe.providers.base import SignedWebhook
from callpipe.providers.vonage.signature import VonageVerifier, verify_vonage_jwt
from callpipe.runner.app import Credentials, RunnerConfig, create_app

jwt = pytest.importorskip("jwt")

SECRET = "vonage-signature-secret-0123456789"
HOST = "bot.example"
ANSWER = {
    "to": "447700900000",
    "from": "447700900001",
    "uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "conversation_uuid": "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "region_url": "https://api-eu-3.vonage.com",
}


def token(payload: bytes | None, secret: str = SECRET, **claims: Any) -> str:
    body: dict[str, Any] = {
        "iat": int(time.time()),
        "jti": "8a3b2d52-6f1b-4f0e-9d45-0c1f3e3c2a11",
        "iss": "Vonage",
        "api_key": "abcd1234",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        **claims,
    }
    if payload is not None:
        body["payload_hash"] = hashlib.sha256(payload).hexdigest()
    return str(jwt.encode(body, secret, algorithm="HS256"))


def query_payload(params: dict[str, str]) -> bytes:
    """What Vonage hashes for a GET: the query parameters as a compact JSON object, in order."""
    return json.dumps(params, separators=(",", ":")).encode()


def test_tokens_agree_with_vonages_own_verifier() -> None:
    vonage_jwt = pytest.importorskip("vonage_jwt")
    body = b'{"uuid":"u1","status":"answered"}'
    good, forged = token(body), token(body, secret="another-secret-0123456789abcdefgh")
    assert vonage_jwt.verify_signature(good, SECRET)
    assert verify_vonage_jwt(SECRET, f"Bearer {good}", body)
    assert not vonage_jwt.verify_signature(forged, SECRET)
    assert not verify_vonage_jwt(SECRET, f"Bearer {forged}", body)


def test_post_body_and_get_query_payloads() -> None:
    verifier = VonageVerifier(SECRET)
    body = json.dumps({"uuid": "u1", "status": "ringing"}).encode()  # Python's spacing
    compact = json.dumps({"uuid": "u1", "status": "ringing"}, separators=(",", ":")).encode()

    def post(auth: str, data: bytes) -> bool:
        headers = {"authorization": auth}
        url = f"https://{HOST}/calls/status"
        return verifier.verify(SignedWebhook("POST", url, headers, data, is_form=False))

    assert post(f"Bearer {token(body)}", body)
    assert post(f"Bearer {token(compact)}", body)  # same object, compact as Vonage writes it
    assert not post(f"Bearer {token(body)}", body.replace(b"ringing", b"busy"))
    assert not post(f"Bearer {token(None)}", body)  # a payload but no payload_hash

    url = f"https://{HOST}/?{urlencode(ANSWER)}"
    get_token = token(query_payload(ANSWER))
    assert verifier.verify(SignedWebhook("GET", url, {"authorization": f"Bearer {get_token}"}, b""))
    tampered = url.replace("447700900001", "447700900666")
    assert not verifier.verify(
        SignedWebhook("GET", tampered, {"authorization": f"Bearer {get_token}"}, b"")
    )


def test_hostile_and_stale_tokens_are_refused() -> None:
    body = b'{"uuid":"u"}'
    good = token(body)
    assert verify_vonage_jwt(SECRET, f"Bearer {good}", body)
    assert not verify_vonage_jwt(SECRET, f"Basic {good}", body)
    assert not verify_vonage_jwt(SECRET, "Bearer " + "x" * 5000, body)
    assert not verify_vonage_jwt(SECRET, "Bearer \udcff.\x00.\x01", body)
    assert not verify_vonage_jwt(SECRET, None, body)
    assert not verify_vonage_jwt("", f"Bearer {good}", body)
    old = token(body, iat=int(time.time()) - 3600)
    assert not verify_vonage_jwt(SECRET, f"Bearer {old}", body)
    none_alg = jwt.encode({"iat": int(time.time())}, None, algorithm="none")
    assert not verify_vonage_jwt(SECRET, f"Bearer {none_alg}", b"")


def test_the_provider_offers_its_verifier_from_the_secret() -> None:
    vonage = registry.require("vonage")
    assert vonage.webhook_verifier({}) is None
    assert isinstance(vonage.webhook_verifier({"VONAGE_SIGNATURE_SECRET": SECRET}), VonageVerifier)
    assert "VONAGE_SIGNATURE_SECRET" in registry.webhook_secrets()["vonage"]


def test_runner_answers_a_signed_vonage_webhook_without_insecure() -> None:
    async def bot(args: Any) -> None:
        return None

    credentials = Credentials(extra={"VONAGE_SIGNATURE_SECRET": SECRET})
    app = create_app(bot, RunnerConfig(proxy=HOST), credentials=credentials, secret=b"k" * 32)
    client = TestClient(app)
    query = urlencode(ANSWER)
    auth = {"Authorization": f"Bearer {token(query_payload(ANSWER))}"}
    answered = client.get(f"/?{query}", headers=auth)
    assert answered.status_code == 200, answered.text
    ncco = answered.json()
    uri = ncco[0]["endpoint"][0]["uri"]
    assert uri.startswith(f"wss://{HOST}/ws/") and len(uri) > len(f"wss://{HOST}/ws/") + 20
    assert client.get(f"/?{query}").status_code == 403  # unsigned
    forged = {"Authorization": f"Bearer {token(query_payload(ANSWER), secret='x' * 32)}"}
    assert client.get(f"/?{query}", headers=forged).status_code == 403
    other = dict(ANSWER, uuid="ffffffff-bbbb-cccc-dddd-0123456789ab")
    assert client.get(f"/?{urlencode(other)}", headers=auth).status_code == 403  # replayed
