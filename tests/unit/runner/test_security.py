"""Stream tokens and webhook signatures, checked against the providers' official SDKs."""

from __future__ import annotations

import base64
import time

import pytest

from callpipe.runner.security import (
    StreamTokens,
    TelnyxVerifier,
    TokenError,
    plivo_v3_signature,
    twilio_signature,
    verify_plivo_v3,
    verify_twilio,
)

SECRET = b"s" * 32


def test_token_round_trip_single_use() -> None:
    tokens = StreamTokens(SECRET, ttl=30)
    token = tokens.issue(provider="twilio", call_id="CA1")
    claims = tokens.redeem(token, provider="twilio", call_id="CA1")
    assert claims.call_id == "CA1"
    with pytest.raises(TokenError, match="already used"):
        tokens.redeem(token, provider="twilio", call_id="CA1")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "bad signature"),
        (lambda t: "x" + t, "bad signature"),
        (lambda t: t.split(".")[0], "bad signature"),
        (lambda t: "", "missing"),
    ],
)
def test_forged_tokens_refused(mutate, match) -> None:  # type: ignore[no-untyped-def]
    tokens = StreamTokens(SECRET)
    with pytest.raises(TokenError, match=match):
        tokens.redeem(mutate(tokens.issue(provider="twilio")), provider="twilio", call_id=None)


def test_token_from_another_secret_refused() -> None:
    other = StreamTokens(b"o" * 32).issue(provider="twilio")
    with pytest.raises(TokenError, match="bad signature"):
        StreamTokens(SECRET).redeem(other, provider="twilio", call_id=None)


def test_shared_secret_works_across_instances() -> None:
    token = StreamTokens(SECRET).issue(provider="plivo")
    assert StreamTokens(SECRET).redeem(token, provider="plivo", call_id="x").provider == "plivo"


def test_expiry_binding_and_provider() -> None:
    tokens = StreamTokens(SECRET, ttl=5)
    now = time.time()
    with pytest.raises(TokenError, match="expired"):
        tokens.redeem(tokens.issue(provider="twilio", now=now - 10), provider="twilio", call_id="")
    with pytest.raises(TokenError, match="another call"):
        tokens.redeem(
            tokens.issue(provider="twilio", call_id="CA1"), provider="twilio", call_id="CA2"
        )
    with pytest.raises(TokenError, match="token is for telnyx"):
        tokens.redeem(tokens.issue(provider="telnyx"), provider="twilio", call_id="")


def test_short_secret_rejected() -> None:
    with pytest.raises(ValueError):
        StreamTokens(b"short")


# ------------------------------------------------------------------------------------ Twilio

TWILIO_PARAMS = [
    ("CallSid", "CA123"),
    ("From", "+15551112222"),
    ("To", "+15553334444"),
    ("AccountSid", "AC1"),
    ("Caller", "+15551112222"),
]


def test_twilio_signature_matches_sdk() -> None:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator("authtok")
    url = "https://bot.example/"
    sdk = validator.compute_signature(url, dict(TWILIO_PARAMS))
    assert twilio_signature("authtok", url, TWILIO_PARAMS) == sdk
    assert verify_twilio("authtok", url, TWILIO_PARAMS, sdk)
    # The SDK accepts ours, including the port variant it also tries.
    assert validator.validate("https://bot.example:443/", dict(TWILIO_PARAMS), sdk)
    assert verify_twilio("authtok", "https://bot.example:443/", TWILIO_PARAMS, sdk)


def test_twilio_tampering_rejected() -> None:
    url = "https://bot.example/"
    sig = twilio_signature("authtok", url, TWILIO_PARAMS)
    tampered = [(k, "+19990000000" if k == "From" else v) for k, v in TWILIO_PARAMS]
    assert not verify_twilio("authtok", url, tampered, sig)
    assert not verify_twilio("authtok", "https://evil.example/", TWILIO_PARAMS, sig)
    assert not verify_twilio("other", url, TWILIO_PARAMS, sig)
    assert not verify_twilio("authtok", url, TWILIO_PARAMS, None)


# ------------------------------------------------------------------------------------- Plivo


@pytest.mark.parametrize(
    ("method", "url", "params"),
    [
        ("POST", "https://bot.example/", {"CallUUID": "u-1", "From": "1555", "To": "1666"}),
        ("POST", "https://bot.example/answer?b=2&a=1", {"CallUUID": "u-1", "Event": "StartApp"}),
        ("POST", "https://bot.example/?x=1", {}),
        ("GET", "https://bot.example/?CallUUID=u-1&From=1555", {}),
        ("POST", "https://bot.example/", {"Multi": ["b", "a"], "A": "1"}),
    ],
)
def test_plivo_v3_matches_sdk(method: str, url: str, params: dict) -> None:  # type: ignore[type-arg]
    from plivo.utils.signature_v3 import validate_v3_signature

    nonce = "12345678901234567890"
    ours = plivo_v3_signature("plivotok", method, url, params, nonce)
    assert validate_v3_signature(method, url, nonce, "plivotok", ours, dict(params))
    assert verify_plivo_v3("plivotok", method, url, params, nonce, f"other,{ours}")
    assert not verify_plivo_v3("plivotok", method, url, params, "0" + nonce, ours)
    assert not verify_plivo_v3("wrong", method, url, params, nonce, ours)


# ------------------------------------------------------------------------------------ Telnyx


def _telnyx_keys() -> tuple[object, str]:
    from nacl.signing import SigningKey

    key = SigningKey.generate()
    return key, base64.b64encode(bytes(key.verify_key)).decode()


def _telnyx_sign(key: object, body: bytes, ts: str) -> str:
    signed = key.sign(ts.encode() + b"|" + body)  # type: ignore[attr-defined]
    return base64.b64encode(signed.signature).decode()


def test_telnyx_ed25519_agrees_with_sdk() -> None:
    from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature

    key, public = _telnyx_keys()
    body = b"CallSid=v3%3Aabc&From=%2B15551112222"
    ts = str(int(time.time()))
    sig = _telnyx_sign(key, body, ts)
    headers = {"telnyx-signature-ed25519": sig, "telnyx-timestamp": ts}
    verify_webhook_signature(body, headers, public)  # the SDK accepts it
    verifier = TelnyxVerifier(public)
    assert verifier.verify(body, sig, ts)
    assert not verifier.verify(body + b"x", sig, ts)
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(body + b"x", headers, public)
    old = str(int(time.time()) - 3600)
    assert not verifier.verify(body, _telnyx_sign(key, body, old), old)
    assert not verifier.verify(body, None, ts)
    assert not verifier.verify(body, "not base64!!", ts)


def test_telnyx_bad_public_key() -> None:
    with pytest.raises(ValueError):
        TelnyxVerifier(base64.b64encode(b"short").decode())
