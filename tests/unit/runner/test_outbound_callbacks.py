"""POST /calls/status for each provider, signed as the provider signs (SDKs where available)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.dials import DialBook
from callpipe.telephony.dial.types import CallHandle

HOST = "bot.example"
STATUS_URL = f"https://{HOST}/calls/status"


async def _bot(args: Any) -> None:
    return None


def client(credentials: Credentials, *, vonage_secret: str | None = None) -> TestClient:
    if vonage_secret:
        credentials.extra["VONAGE_SIGNATURE_SECRET"] = vonage_secret
    app = create_app(_bot, RunnerConfig(proxy=HOST), credentials=credentials, secret=b"k" * 32)
    return TestClient(app)


def book(c: TestClient) -> DialBook:
    dials: DialBook = c.app.state.runner.dials  # type: ignore[attr-defined]
    return dials


def add(c: TestClient, provider: str, call_id: str) -> CallHandle:
    handle = CallHandle(provider=provider, call_id=call_id, dial_id=f"d-{call_id}", to="+1555")
    asyncio.run(book(c).add(handle))  # the in-process store: the handle itself is updated
    return handle


def test_plivo_ring_hangup_and_machine_callbacks_signed_v3() -> None:
    from plivo.utils.signature_v3 import construct_post_url, get_signature_v3

    c = client(Credentials(plivo_auth_token="plivotok"))
    handle = add(c, "plivo", "req-1")

    def signed(form: dict[str, str], nonce: str) -> dict[str, Any]:
        base = construct_post_url(STATUS_URL, dict(form)).decode()
        sig = get_signature_v3(b"plivotok", base, nonce).decode()
        headers = {"X-Plivo-Signature-V3": sig, "X-Plivo-Signature-V3-Nonce": nonce}
        return {"data": form, "headers": headers}

    base = {"RequestUUID": "req-1", "CallUUID": "call-1"}
    for i, extra in enumerate(
        [{"CallStatus": "ringing"}, {"Machine": "true"}, {"CallStatus": "busy"}]
    ):
        r = c.post("/calls/status", **signed({**base, **extra}, f"{i:020d}"))
        assert r.status_code == 204
    assert handle.history == [("status", "ringing"), ("amd", "machine_start"), ("status", "busy")]
    forged = signed({**base, "CallStatus": "completed"}, "1" * 20)
    forged["data"]["CallStatus"] = "no-answer"  # tampered after signing
    assert c.post("/calls/status", **forged).status_code == 403
    assert handle.status == "busy"


def test_telnyx_texml_callbacks_signed_ed25519() -> None:
    from nacl.signing import SigningKey

    key = SigningKey.generate()
    public = base64.b64encode(bytes(key.verify_key)).decode()
    c = client(Credentials(telnyx_public_key=public))
    handle = add(c, "telnyx", "v3:abc")

    def post(form: dict[str, str], ts: int) -> int:
        body = urlencode(form).encode()
        sig = base64.b64encode(key.sign(str(ts).encode() + b"|" + body).signature).decode()
        headers = {
            "telnyx-signature-ed25519": sig,
            "telnyx-timestamp": str(ts),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return c.post("/calls/status", content=body, headers=headers).status_code

    now = int(time.time())
    assert post({"CallSid": "v3:abc", "CallStatus": "in-progress"}, now) == 204
    assert post({"CallSid": "v3:abc", "AnsweredBy": "machine_end_beep"}, now) == 204
    assert post({"CallSid": "v3:abc", "CallStatus": "completed"}, now - 3600) == 403  # stale
    assert handle.status == "answered" and handle.answered_by == "machine_end_beep"


def _vonage_token(secret: str, body: bytes, **claims: Any) -> str:
    import jwt

    payload = {
        "iat": int(time.time()),
        "jti": "j1",
        "api_key": "key",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        **claims,
    }
    return str(jwt.encode(payload, secret, algorithm="HS256"))


def test_vonage_event_and_amd_callbacks_signed_jwt() -> None:
    pytest.importorskip("jwt")
    secret = "vonage-signature-secret-0123456789"
    c = client(Credentials(twilio_auth_token="t"), vonage_secret=secret)
    handle = add(c, "vonage", "uuid-1")

    def post(
        event: dict[str, Any], token_secret: str = secret, body_override: bytes | None = None
    ) -> int:
        body = json.dumps(event).encode()
        token = _vonage_token(token_secret, body)
        return c.post(
            "/calls/status",
            content=body_override or body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ).status_code

    assert post({"uuid": "uuid-1", "status": "ringing"}) == 204
    assert post({"uuid": "uuid-1", "status": "answered"}) == 204
    assert post({"uuid": "uuid-1", "status": "machine", "sub_state": "beep_start"}) == 204
    assert post({"uuid": "uuid-1", "status": "completed"}, token_secret="w" * 32) == 403
    tampered = json.dumps({"uuid": "uuid-1", "status": "failed"}).encode()
    assert post({"uuid": "uuid-1", "status": "completed"}, body_override=tampered) == 403
    assert handle.history == [
        ("status", "ringing"),
        ("status", "answered"),
        ("amd", "machine_end_beep"),
    ]


def test_exotel_and_unsigned_callbacks_are_refused_in_secure_mode() -> None:
    c = client(Credentials(twilio_auth_token="t"))
    handle = add(c, "exotel", "ex1")
    r = c.post("/calls/status", data={"CallSid": "ex1", "Status": "completed"})
    assert r.status_code == 403 and handle.status == "initiated"


def test_local_mode_takes_exotel_callbacks_unverified() -> None:
    app = create_app(_bot, RunnerConfig(insecure=True), credentials=Credentials(), secret=b"k" * 32)
    c = TestClient(app)
    handle = add(c, "exotel", "ex1")
    r = c.post("/calls/status", data={"CallSid": "ex1", "Status": "no-answer"})
    assert r.status_code == 204 and handle.status == "no-answer"


def test_callback_for_an_unknown_call_is_acknowledged_and_ignored() -> None:
    from callpipe.runner.security import twilio_signature

    c = client(Credentials(twilio_auth_token="t"))
    form = {"CallSid": "CAunknown", "CallStatus": "completed"}
    sig = twilio_signature("t", STATUS_URL, form.items())
    r = c.post("/calls/status", data=form, headers={"X-Twilio-Signature": sig})
    assert r.status_code == 204
