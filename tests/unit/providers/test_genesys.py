"""Genesys through the provider registry: detection from ``open``, upgrade authentication
(X-API-KEY and the RFC 9421 HMAC signature, with Genesys's documented example as the test vector),
the runner's start-up checks, and the serializer the runner builds."""

from __future__ import annotations

import base64
import json

import pytest
from starlette.datastructures import Headers

from callpipe.providers import registry
from callpipe.providers.base import SignedUpgrade
from callpipe.providers.genesys import GENESYS, GenesysCallData
from callpipe.providers.genesys.dialect import GenesysDialect
from callpipe.providers.genesys.signature import (
    AudioHookVerifier,
    decode_client_secret,
    hmac_sha256,
    parse_signature,
    parse_signature_input,
    signature_base,
)
from callpipe.providers.twilio.dialect import TwilioDialect
from callpipe.runner.app import RunnerConfig
from callpipe.runner.run import startup_refusal
from callpipe.runner.utils import build_serializer
from callpipe.serializers.genesys import GenesysAudioHookSerializer

# The AudioHook documentation's signature example (also in Genesys's reference server tests).
DOC_API_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
DOC_SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
DOC_CREATED = 1641013200
DOC_HEADERS = {
    "host": "audiohook.example.com",
    "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
    "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
    "audiohook-correlation-id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "x-api-key": DOC_API_KEY,
    "signature": "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:",
    "signature-input": 'sig1=("@request-target" "@authority" "audiohook-organization-id" '
    '"audiohook-session-id" "audiohook-correlation-id" "x-api-key");'
    'keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";'
    'alg="hmac-sha256";created=1641013200;expires=3282026430',
}
DOC_TARGET = "/api/v1/voicebiometrics/ws"


def upgrade(headers: dict[str, str], target: str = DOC_TARGET) -> SignedUpgrade:
    return SignedUpgrade(Headers(headers), target, headers.get("host", ""))


def verifier(now: float = DOC_CREATED + 1, **kwargs: str) -> AudioHookVerifier:
    secret = decode_client_secret(DOC_SECRET)
    return AudioHookVerifier(DOC_API_KEY, secret, clock=lambda: now, **kwargs)  # type: ignore[arg-type]


def test_documented_example_verifies_once() -> None:
    check = verifier()
    assert check.refusal(upgrade(DOC_HEADERS)) is None
    assert check.refusal(upgrade(DOC_HEADERS)) == "replayed nonce"


def test_rfc_9421_hmac_example_signature_base() -> None:
    """RFC 9421 (draft 11) appendix B.2.5: HMAC-SHA256 with the shared test secret."""
    sig_input = parse_signature_input(
        'sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"'
    )[0]
    headers = {"date": "Tue, 20 Apr 2021 02:07:55 GMT", "content-type": "application/json"}
    base = signature_base(sig_input, headers, {"@authority": "example.com"})
    assert base == (
        '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
        '"@authority": example.com\n'
        '"content-type": application/json\n'
        '"@signature-params": ("date" "@authority" "content-type");created=1618884473;'
        'keyid="test-shared-secret"'
    )
    key = base64.b64decode(
        "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="
    )
    expected = parse_signature("sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:")
    assert hmac_sha256(key, base) == expected["sig-b25"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"audiohook-session-id": "6b1c1f7e-0000-4000-8000-000000000000"}, "signature mismatch"),
        ({"host": "evil.example.com"}, "signature mismatch"),
        ({"x-api-key": "someone-else"}, "missing or wrong X-API-KEY"),
        ({"signature": "sig1=:AAAA:"}, "signature mismatch"),
        ({"signature": "sig1=not-bytes"}, "missing or malformed Signature/Signature-Input"),
        ({"signature-input": "sig1=garbage"}, "missing or malformed Signature/Signature-Input"),
        ({"signature": "other=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"}, "no signature"),
    ],
)
def test_forged_upgrades_are_refused(change: dict[str, str], reason: str) -> None:
    refusal = verifier().refusal(upgrade({**DOC_HEADERS, **change}))
    assert refusal is not None and refusal.startswith(reason)


def test_a_different_target_does_not_verify() -> None:
    assert verifier().refusal(upgrade(DOC_HEADERS, "/ws")) == "signature mismatch"


def test_missing_signature_is_refused_when_a_client_secret_is_set() -> None:
    unsigned = {k: v for k, v in DOC_HEADERS.items() if not k.startswith("signature")}
    assert verifier().refusal(upgrade(unsigned)) == (
        "missing or malformed Signature/Signature-Input"
    )
    assert verifier().refusal(upgrade({})) == "missing or wrong X-API-KEY"


def test_stale_and_future_signatures_are_refused() -> None:
    assert verifier(now=DOC_CREATED + 60).refusal(upgrade(DOC_HEADERS)) == "signature too old"
    assert verifier(now=DOC_CREATED - 60).refusal(upgrade(DOC_HEADERS)) == (
        "signature created in the future"
    )


def test_signature_must_cover_the_audiohook_headers() -> None:
    headers = dict(DOC_HEADERS)
    headers["signature-input"] = headers["signature-input"].replace(' "x-api-key"', "")
    assert verifier().refusal(upgrade(headers)) == (
        "signature does not cover the AudioHook headers"
    )


def test_api_key_only_without_a_client_secret() -> None:
    check = AudioHookVerifier("my-key")
    assert check.refusal(upgrade({"x-api-key": "my-key"})) is None
    assert check.refusal(upgrade({"x-api-key": "my-key2"})) is not None
    assert check.refusal(upgrade({})) is not None


def test_organization_can_be_pinned() -> None:
    pinned = verifier(organization_id="d7934305-0972-4844-938e-9060eef73d05")
    assert pinned.refusal(upgrade(DOC_HEADERS)) is None
    other = verifier(organization_id="11111111-0972-4844-938e-9060eef73d05")
    assert other.refusal(upgrade(DOC_HEADERS)) == (
        "organization id does not match GENESYS_ORGANIZATION_ID"
    )


def test_hostile_signature_headers_never_raise() -> None:
    for value in ("", "sig1=(", 'sig1=("a" "b"', "=" * 5000, 'sig1=("\\");created=1', ",,,"):
        headers = {**DOC_HEADERS, "signature-input": value, "signature": value}
        assert verifier().refusal(upgrade(headers)) is not None


def test_stream_verifier_from_the_environment() -> None:
    assert GENESYS.stream_verifier({}) is None
    assert GENESYS.stream_verifier({"GENESYS_CLIENT_SECRET": DOC_SECRET}) is None
    assert GENESYS.stream_verifier({"GENESYS_API_KEY": "k", "GENESYS_CLIENT_SECRET": "%%"}) is None
    check = GENESYS.stream_verifier(
        {"GENESYS_API_KEY": DOC_API_KEY, "GENESYS_CLIENT_SECRET": DOC_SECRET}
    )
    assert check is not None and check.refusal(upgrade({"x-api-key": DOC_API_KEY})) is not None


def test_upgrades_are_claimed_by_their_audiohook_headers() -> None:
    assert registry.claimed_upgrade(Headers(DOC_HEADERS)) is GENESYS
    assert registry.claimed_upgrade(Headers({"host": "x", "x-api-key": "k"})) is None


def test_open_is_detected_as_genesys_with_its_call_data() -> None:
    dialect = GenesysDialect()
    open_message = json.loads(dialect.handshake()[0])
    provider, call_data = registry.detect_stream(open_message) or (None, None)
    assert provider is GENESYS and isinstance(call_data, GenesysCallData)
    assert call_data.stream_id == dialect.identity.stream_id
    assert call_data.call_id == dialect.identity.call_id
    assert call_data["from"] == dialect.identity.from_number
    assert call_data.organization_id == dialect.organization_id
    assert GENESYS.stream_parameters(call_data) == {}


@pytest.mark.parametrize(
    "message",
    [
        {"version": "2", "type": "ping", "id": "s", "parameters": {}},
        {"version": "1", "type": "open", "id": "s", "parameters": {"media": []}},
        {"version": "2", "type": "open", "id": "", "parameters": {"media": []}},
        {"version": "2", "type": "open", "id": "s", "parameters": {}},
        {"version": "2", "type": "open", "id": "s", "parameters": []},
        {"event": "start", "type": "open"},
    ],
)
def test_other_messages_are_not_a_genesys_handshake(message: dict[str, object]) -> None:
    assert GENESYS.detect_stream(message) is None


def test_other_handshakes_are_not_genesys() -> None:
    for raw in TwilioDialect().handshake():
        detected = registry.detect_stream(json.loads(raw))
        assert detected is None or detected[0] is not GENESYS


def test_the_runner_builds_a_serializer_that_owes_opened() -> None:
    open_message = json.loads(GenesysDialect().handshake()[0])
    detected = registry.detect_stream(open_message)
    assert detected is not None
    serializer = build_serializer("genesys", detected[1])
    assert isinstance(serializer, GenesysAudioHookSerializer) and serializer.is_open
    assert not serializer.auto_hang_up and serializer.call_control is None
    (opened,) = serializer.pending_replies()
    assert isinstance(opened, str) and json.loads(opened)["type"] == "opened"


def test_public_runner_needs_the_api_key() -> None:
    config = RunnerConfig(transport="genesys", proxy="bot.example")
    refusal = startup_refusal(config, {})
    assert refusal is not None and "GENESYS_API_KEY" in refusal
    assert startup_refusal(config, {"GENESYS_API_KEY": "k"}) is None
    assert GENESYS.setup_url("bot.example") == "wss://bot.example/ws"
