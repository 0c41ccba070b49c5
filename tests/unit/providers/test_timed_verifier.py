"""The shared base of secret-keyed, time-bounded webhook verifiers (Vonage, jambonz)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from starlette.datastructures import Headers

from callpipe.providers.base import SignedWebhook, TimedSecretVerifier, WebhookVerifier
from callpipe.providers.jambonz import JambonzProvider
from callpipe.providers.jambonz.signature import JambonzVerifier
from callpipe.providers.vonage import VonageProvider
from callpipe.providers.vonage.signature import VonageVerifier

SECRET = "wh_secret_0123456789"
NOW = 1_764_000_000


def _jambonz_request(signed_at: int) -> SignedWebhook:
    body = b'{"call_sid": "x"}'
    digest = hmac.new(SECRET.encode(), f"{signed_at}.".encode() + body, hashlib.sha256)
    headers = Headers({"Jambonz-Signature": f"t={signed_at},v1={digest.hexdigest()}"})
    return SignedWebhook("POST", "https://bot.example/", headers, body, [], is_form=False)


@pytest.mark.parametrize("cls", [JambonzVerifier, VonageVerifier])
def test_from_secret_needs_a_configured_secret(cls: type[TimedSecretVerifier]) -> None:
    assert cls.from_secret(None) is None
    assert cls.from_secret("") is None
    verifier = cls.from_secret(SECRET)
    assert isinstance(verifier, cls) and isinstance(verifier, WebhookVerifier)


def test_providers_build_their_verifier_from_the_secret() -> None:
    assert JambonzProvider().webhook_verifier({}) is None
    assert isinstance(
        JambonzProvider().webhook_verifier({"JAMBONZ_WEBHOOK_SECRET": SECRET}), JambonzVerifier
    )
    assert VonageProvider().webhook_verifier({"VONAGE_SIGNATURE_SECRET": ""}) is None
    assert isinstance(
        VonageProvider().webhook_verifier({"VONAGE_SIGNATURE_SECRET": SECRET}), VonageVerifier
    )


def test_tolerance_defaults_per_provider_and_can_be_narrowed() -> None:
    old = _jambonz_request(NOW - 200)
    assert JambonzVerifier(SECRET, clock=lambda: NOW).verify(old)  # 300 s by default
    assert not JambonzVerifier(SECRET, tolerance=100, clock=lambda: NOW).verify(old)
    assert not JambonzVerifier(SECRET, clock=lambda: NOW + 400).verify(old)


def test_a_verifier_must_say_how_it_verifies() -> None:
    class Incomplete(TimedSecretVerifier):
        pass

    with pytest.raises(TypeError):
        Incomplete(SECRET)  # type: ignore[abstract]
