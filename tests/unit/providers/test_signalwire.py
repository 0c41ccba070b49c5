"""SignalWire through the provider registry: documents, detection, signatures, serializer.

Signature vectors are the ones SignalWire's own Python SDK (``signalwire`` 2.1.1,
``signalwire/tests/test_request_validator.py``) checks: two captured from real SignalWire
Compatibility webhooks, one JSON (RELAY) webhook, and the Compatibility-scheme example.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.datastructures import Headers
from starlette.testclient import TestClient

from callpipe.providers import registry
from callpipe.providers.base import SignedWebhook
from callpipe.providers.signalwire import SIGNALWIRE
from callpipe.providers.signalwire.dialect import SignalWireDialect
from callpipe.providers.twilio.dialect import TwilioDialect
from callpipe.runner.answer import answer_document, busy_document
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.utils import build_serializer
from callpipe.serializers.signalwire import SignalWireFrameSerializer
from callpipe.telephony.signalwire import SignalWireCallControl

# A Compatibility webhook SignalWire sent (SDK test vector: URL, key, fields, signature).
REAL_URL = "https://675d-189-71-169-171.ngrok-free.app/voice"
REAL_KEY = "PSK_V3bF8oyeRNpJWGoRWHNYQMUU"
REAL_SIGNATURE = "muUMpldcBHlzuXGZ5gbw1ETZCYA="
REAL_FORM = {
    "CallSid": "a97d4e8a-6047-4e2b-be48-fb96b33b5642",
    "AccountSid": "6bfbbe86-a901-4197-8759-2a0de1fa319d",
    "ApiVersion": "2010-04-01",
    "Direction": "outbound-api",
    "From": "sip:+17063958228@sip.swire.io",
    "To": "sip:jpsantos@joaosantos-2a0de1fa319d.sip.swire.io",
    "Timestamp": "Thu, 09 Nov 2023 14:40:55 +0000",
    "CallStatus": "no-answer",
    "CallbackSource": "call-progress-events",
    "HangupDirection": "outbound",
    "HangupBy": "sip:+17063958228@sip.swire.io",
    "SipResultCode": "487",
}
JSON_URL = "https://81f2-2-45-18-191.ngrok-free.app/"
JSON_KEY = "PSK_7TruNcSNTxp4zNrykMj4EPzF"
JSON_SIGNATURE = "b18500437ebb010220ddd770cbe6fd531ea0ba0d"
JSON_BODY = (
    b'{"call":{"call_id":"b5d63b2e-f75b-4dc8-b6d4-269b635f96c0","node_id":'
    b'"fa3570ae-f8bd-42c2-83f4-9950d906c91b@us-west","segment_id":'
    b'"b5d63b2e-f75b-4dc8-b6d4-269b635f96c0","call_state":"created","direction":"inbound",'
    b'"type":"phone","from":"+12135877632","to":"+12089806814","from_number":"+12135877632",'
    b'"to_number":"+12089806814","project_id":"4b7ae78a-d02e-4889-a63b-08b156d5916e",'
    b'"space_id":"62615f44-2a34-4235-b38b-76b5a1de6ef8"},"vars":{}}'
)


def _signed(
    url: str, *, form: dict[str, str] | None = None, body: bytes = b"", signature: str = ""
) -> SignedWebhook:
    is_form = form is not None
    return SignedWebhook(
        method="POST",
        url=url,
        headers=Headers({"X-SignalWire-Signature": signature}),
        body=urlencode(form).encode() if form is not None else body,
        form=list(form.items()) if form is not None else [],
        is_form=is_form,
    )


def _verifier(key: str) -> Any:
    verifier = SIGNALWIRE.webhook_verifier({"SIGNALWIRE_SIGNING_KEY": key})
    assert verifier is not None
    return verifier


# --------------------------------------------------------------------------- signatures


def test_real_compatibility_webhook_vector_verifies() -> None:
    assert _verifier(REAL_KEY).verify(_signed(REAL_URL, form=REAL_FORM, signature=REAL_SIGNATURE))


def test_compatibility_example_vector_verifies() -> None:
    form = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert _verifier("12345").verify(
        _signed(url, form=form, signature="RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    )


def test_json_webhook_vector_verifies() -> None:
    assert _verifier(JSON_KEY).verify(_signed(JSON_URL, body=JSON_BODY, signature=JSON_SIGNATURE))


@pytest.mark.parametrize(
    "change",
    ["key", "field", "url", "signature", "no-signature"],
)
def test_any_change_is_refused(change: str) -> None:
    key, url, form, sig = REAL_KEY, REAL_URL, dict(REAL_FORM), REAL_SIGNATURE
    if change == "key":
        key = REAL_KEY + "x"
    elif change == "field":
        form["CallStatus"] = "completed"
    elif change == "url":
        url = REAL_URL + "2"
    elif change == "signature":
        sig = sig[:-2] + "B="
    else:
        sig = ""
    assert not _verifier(key).verify(_signed(url, form=form, signature=sig))


def test_hostile_json_bodies_never_raise() -> None:
    verifier = _verifier(JSON_KEY)
    for body in (b"[" * 50_000, b"\xff\xfe", b"null", b'{"a": {"b": 1}}'):
        assert verifier.verify(_signed(JSON_URL, body=body, signature=JSON_SIGNATURE)) is False


def test_no_signing_key_means_no_verifier() -> None:
    assert SIGNALWIRE.webhook_verifier({}) is None
    assert SIGNALWIRE.webhook_verifier({"TWILIO_AUTH_TOKEN": "t"}) is None


# ------------------------------------------------------------------------ runner webhook


HOST = "bot.example"
KEY = "PSK_callpipe_test_key"
FORM = {**REAL_FORM, "CallStatus": "ringing", "Direction": "inbound"}


def _client(**config: Any) -> TestClient:
    config.setdefault("proxy", HOST)
    creds = Credentials(extra={"SIGNALWIRE_SIGNING_KEY": KEY})

    async def bot(args: Any) -> None:
        return None

    app = create_app(bot, RunnerConfig(**config), credentials=creds, secret=b"k" * 32)
    return TestClient(app)


def _compat_signature(key: str, url: str, form: dict[str, str]) -> str:
    """Signed independently: Twilio's SDK computes the Compatibility scheme SignalWire uses."""
    from twilio.request_validator import RequestValidator

    return str(RequestValidator(key).compute_signature(url, form))


def test_runner_answers_a_signed_signalwire_webhook_with_cxml_and_a_token() -> None:
    signature = _compat_signature(KEY, f"https://{HOST}/", FORM)
    resp = _client().post("/", data=FORM, headers={"X-SignalWire-Signature": signature})
    assert resp.status_code == 200, resp.text
    stream = ET.fromstring(resp.text).find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url", "").startswith(f"wss://{HOST}/ws/")
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"from_number": FORM["From"], "to_number": FORM["To"]}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-SignalWire-Signature": _compat_signature(KEY + "x", f"https://{HOST}/", FORM)},
        {"X-Twilio-Signature": _compat_signature(KEY, f"https://{HOST}/", FORM)},
        {},
    ],
    ids=["wrong-key", "twilio-header", "unsigned"],
)
def test_runner_refuses_what_signalwire_did_not_sign(headers: dict[str, str]) -> None:
    resp = _client().post("/", data=FORM, headers=headers)
    assert resp.status_code == 403 and "wss://" not in resp.text


def test_signalwire_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALWIRE_SIGNING_KEY", REAL_KEY)
    assert Credentials.from_env().secrets()["SIGNALWIRE_SIGNING_KEY"] == REAL_KEY


# ----------------------------------------------------------------------------- documents


def test_answer_and_busy_documents() -> None:
    doc = answer_document("signalwire", "bot.example", token="tok", from_number="+1555")
    assert doc.media_type == "application/xml"
    assert doc.body == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n  <Connect>\n'
        '    <Stream url="wss://bot.example/ws/tok">\n'
        '      <Parameter name="from_number" value="+1555"/>\n    </Stream>\n'
        "  </Connect>\n</Response>"
    )
    busy = busy_document("signalwire", "at capacity")
    assert ET.fromstring(busy.body).find("Reject").get("reason") == "busy"  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- detection


def test_stream_detected_as_signalwire_and_twilio_stays_twilio() -> None:
    for dialect, expected in ((SignalWireDialect(), "signalwire"), (TwilioDialect(), "twilio")):
        start = json.loads(dialect.handshake()[1])
        detected = registry.detect_stream(start)
        assert detected is not None and detected[0].name == expected
        assert detected[1].call_id == dialect.identity.call_id
        assert detected[1].stream_id == dialect.identity.stream_id
    assert registry.detect_stream(json.loads(SignalWireDialect().handshake()[0])) is None


def test_unsigned_webhook_detection_in_local_mode() -> None:
    twilio_form = {"CallSid": "CA" + "0" * 32, "AccountSid": "AC" + "0" * 32}
    assert registry.detect_webhook(Headers({}), REAL_FORM) is SIGNALWIRE
    assert registry.detect_webhook(Headers({"x-signalwire-signature": "x"}), {}) is SIGNALWIRE
    assert registry.detect_webhook(Headers({}), twilio_form) is registry.require("twilio")


# ---------------------------------------------------------------------------- serializer


def test_serializer_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", "p-1")
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", "PT-token")
    monkeypatch.setenv("SIGNALWIRE_SPACE_URL", "example.signalwire.com")
    call_data = SIGNALWIRE.detect_stream(json.loads(SignalWireDialect().handshake()[1]))
    assert call_data is not None
    serializer = build_serializer("signalwire", call_data)
    assert isinstance(serializer, SignalWireFrameSerializer) and serializer.auto_hang_up
    control = serializer.call_control
    assert isinstance(control, SignalWireCallControl)
    assert control.call_url == (
        "https://example.signalwire.com/api/laml/2010-04-01/Accounts/p-1/Calls/"
        f"{call_data.call_id}.json"
    )


def test_serializer_without_credentials_does_not_hang_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN", "SIGNALWIRE_SPACE_URL"):
        monkeypatch.delenv(name, raising=False)
    serializer = build_serializer(
        "signalwire",
        SIGNALWIRE.detect_stream(json.loads(SignalWireDialect().handshake()[1]))
        or pytest.fail("not detected"),
    )
    assert serializer.auto_hang_up is False and serializer.call_control is None


def test_serializer_names_what_is_missing() -> None:
    with pytest.raises(Exception, match="api_token, space"):
        SignalWireFrameSerializer("s", "c", project_id="p")
