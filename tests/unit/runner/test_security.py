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
    twilio_signature_algorithm,
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


# ----------------------------------------------- Twilio: the SDK's exact rules (issue 14)


def _multidict(pairs: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    from starlette.datastructures import ImmutableMultiDict

    return ImmutableMultiDict(pairs)  # the SDK reads repeated fields with getlist()


@pytest.mark.parametrize(
    "params",
    [
        [("CallSid", "CA1"), ("From", "+1555")],
        [("A", "2"), ("A", "1"), ("B", "x")],  # a repeated parameter, values out of order
        [("A", "1"), ("A", "1"), ("a", "1")],  # exact duplicates collapse, names are case-sensitive
        [("Empty", ""), ("Ünïcode", "välue ✓")],
        [],
    ],
    ids=["plain", "repeated", "duplicates", "unicode", "none"],
)
@pytest.mark.parametrize("algorithm", ["HMAC_SHA1", "HMAC_SHA256"])
def test_twilio_signature_identical_to_the_sdk(
    params: list[tuple[str, str]], algorithm: str
) -> None:
    from twilio.request_validator import RequestValidator

    url = "https://bot.example/answer?x=1"
    sdk = RequestValidator("authtok").compute_signature(url, _multidict(params), algorithm)
    assert twilio_signature("authtok", url, params, algorithm) == sdk
    assert verify_twilio("authtok", url, params, sdk, algorithm=algorithm)
    assert RequestValidator("authtok").validate(url, _multidict(params), sdk, algorithm)


def test_twilio_shared_key_sha256_header_algorithm() -> None:
    from twilio.request_validator import RequestValidator, get_signature_algorithm

    header = "key=webhooks_sharedkey_01ABC,algorithm=HMAC_SHA256"
    assert twilio_signature_algorithm(header) == get_signature_algorithm(header) == "HMAC_SHA256"
    assert twilio_signature_algorithm(None) == get_signature_algorithm(None) == "HMAC_SHA1"
    url, form = "https://bot.example/", [("CallSid", "CA1")]
    sig = RequestValidator("shared-secret").compute_signature(url, dict(form), "HMAC_SHA256")
    assert verify_twilio("shared-secret", url, form, sig, algorithm="HMAC_SHA256")
    assert not verify_twilio("shared-secret", url, form, sig)  # SHA1 is another signature
    assert not verify_twilio("shared-secret", url, form, sig, algorithm="HMAC_MD5")


def test_twilio_json_webhook_needs_body_sha256() -> None:
    import hashlib

    from twilio.request_validator import RequestValidator

    body = b'{"CallSid":"CA1","From":"+1555"}'
    url = f"https://bot.example/?bodySHA256={hashlib.sha256(body).hexdigest()}"
    validator = RequestValidator("authtok")
    sig = validator.compute_signature(url, {})
    assert validator.validate(url, body.decode(), sig)  # the SDK's genuine JSON case
    assert verify_twilio("authtok", url, [], sig, body=body)
    assert not verify_twilio("authtok", url, [], sig, body=body.replace(b"1555", b"9999"))
    # A signature over a URL without bodySHA256 says nothing about the body: refused.
    bare = "https://bot.example/"
    assert not verify_twilio("authtok", bare, [], validator.compute_signature(bare, {}), body=body)


@pytest.mark.parametrize("signature", ["ünïcode", "\x00" * 28, "A" * 10_000, ""])
def test_hostile_signatures_fail_without_raising(signature: str) -> None:
    url, form = "https://bot.example/", [("CallSid", "CA1")]
    assert not verify_twilio("authtok", url, form, signature)
    assert not verify_plivo_v3("tok", "POST", url, dict(form), "nonce", signature)


# ------------------------------------------- tokens: hidden binding, mint once, hostile input


def test_token_hides_the_call_id_and_binds_it() -> None:
    tokens = StreamTokens(SECRET)
    token = tokens.issue(provider="twilio", call_id="CA0123456789abcdef")
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert b"CA0123456789abcdef" not in payload and b'"b":' in payload
    assert tokens.verify(token).call_id == ""  # before the start message: signature + expiry only
    with pytest.raises(TokenError, match="another call"):
        tokens.redeem(token, provider="twilio", call_id="CA0123456789abcdeX")
    assert tokens.redeem(token, provider="twilio", call_id="CA0123456789abcdef").call_id


@pytest.mark.parametrize(
    "token", ["ü.ü", "x" * 5000, "\x00.\x00", "W10.sig", "a.b.c", ".", "bnVsbA.x"]
)
def test_hostile_tokens_raise_only_token_error(token: str) -> None:
    tokens = StreamTokens(SECRET)
    with pytest.raises(TokenError):
        tokens.verify(token)
    with pytest.raises(TokenError):
        tokens.redeem(token, provider="twilio", call_id="CA1")


async def test_one_token_per_call_id_and_async_redeem_is_single_use() -> None:
    tokens = StreamTokens(SECRET)
    first = await tokens.issue_for_call(provider="twilio", call_id="CA1", bind=True)
    again = await tokens.issue_for_call(provider="twilio", call_id="CA1", bind=True)
    other = await tokens.issue_for_call(provider="twilio", call_id="CA2", bind=True)
    assert first == again != other  # a replayed webhook gets the same (single-use) token
    await tokens.redeem_async(first, provider="twilio", call_id="CA1")
    with pytest.raises(TokenError, match="already used"):
        await tokens.redeem_async(again, provider="twilio", call_id="CA1")


def test_memory_store_is_bounded_and_expires() -> None:
    from callpipe.runner.token_store import MemoryTokenStore

    store = MemoryTokenStore(max_entries=100)
    for i in range(1000):
        assert store.add_if_absent_sync(f"k{i}", "v", 60) is None
    assert len(store) <= 100
    assert store.add_if_absent_sync("k999", "w", 60) == "v"
    assert store.add_if_absent_sync("short", "v", 0.001) is None
    time.sleep(0.01)
    assert store.add_if_absent_sync("short", "w", 60) is None  # expired: free again
