"""The runner's HTTP surface against hostile requests (issue 14), without a subprocess.

Each test names the attack; the end-to-end versions (real server, a live call alongside, memory
and audio-gap bounds) are in tests/reliability/test_http_attacks.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from callpipe.runner.answer import answer_document
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.webhook import MAX_WEBHOOK_BODY
from callpipe.testing.server import running_server

HOST = "bot.example"
URL = f"https://{HOST}/"
TWILIO = Credentials(twilio_auth_token="authtok", api_key="api-key-0123456789")


async def _bot(args: Any) -> None:
    return None


def _client(credentials: Credentials = TWILIO, **config: Any) -> TestClient:
    config.setdefault("proxy", HOST)
    app = create_app(_bot, RunnerConfig(**config), credentials=credentials, secret=b"k" * 32)
    return TestClient(app)


def _twilio(form: dict[str, str], *, url: str = URL, token: str = "authtok") -> dict[str, Any]:
    from twilio.request_validator import RequestValidator

    sig = RequestValidator(token).compute_signature(url, form)
    return {"data": form, "headers": {"X-Twilio-Signature": sig}}


def _token(doc: str) -> str:
    return doc.split("/ws/", 1)[1].split('"', 1)[0]


# ------------------------------------------------------------------- 1: provider confusion


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("POST", {"data": {"CallUUID": "u1", "From": "1555"}}),  # Plivo-shaped, unsigned
        ("GET", {"params": {"CallSid": "e1", "CallFrom": "0999"}}),  # Exotel-shaped
        ("GET", {"params": {"uuid": "v1", "conversation_uuid": "c1"}}),  # Vonage-shaped
        ("POST", {"data": {"CallSid": "CA1"}, "headers": {"telnyx-signature-ed25519": "AAAA"}}),
        ("POST", {"data": {"CallSid": "CA1"}, "headers": {"x-plivo-signature-v3": "x"}}),
        ("POST", {"data": {"CallSid": "CA1"}, "headers": {"X-Twilio-Signature": "forged="}}),
        ("POST", {"data": {"CallSid": "CA1"}}),
    ],
    ids=["plivo", "exotel", "vonage", "fake-telnyx", "fake-plivo", "forged-twilio", "unsigned"],
)
def test_only_a_configured_and_verified_provider_is_accepted(
    method: str, kwargs: dict[str, Any]
) -> None:
    client = _client()  # detection mode (no -t), only TWILIO_AUTH_TOKEN configured
    resp = client.request(method, "/", **kwargs)
    assert resp.status_code == 403 and "wss://" not in resp.text
    genuine = client.post("/", **_twilio({"CallSid": "CA1"}))
    assert genuine.status_code == 200 and f"wss://{HOST}/ws/" in genuine.text


def test_forced_provider_without_its_secret_is_refused() -> None:
    client = _client(transport="telnyx")  # only Twilio is configured
    resp = client.post("/", **_twilio({"CallSid": "CA1"}))
    assert resp.status_code == 403


def test_no_proxy_means_no_webhook_in_secure_mode() -> None:
    """Without -x the signed URL is unknown: never rebuilt from Host/X-Forwarded-*."""
    client = _client(proxy=None)
    form = {"CallSid": "CA1"}
    # Genuinely signed, for the URL the attacker makes the request look like it was sent to:
    spoofed = client.post(
        "/",
        data=form,
        headers={
            **_twilio(form, url="https://attacker.example/")["headers"],
            "Host": "attacker.example",
            "X-Forwarded-Host": "attacker.example",
            "X-Forwarded-Proto": "https",
        },
    )
    assert spoofed.status_code == 403


def test_with_proxy_the_host_header_changes_nothing() -> None:
    client = _client()
    signed = _twilio({"CallSid": "CA1"})
    headers = {**signed["headers"], "Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    resp = client.post("/", data=signed["data"], headers=headers)
    assert resp.status_code == 200 and "evil.example" not in resp.text


# ------------------------------------------------------------------------ Twilio variants


def test_twilio_shared_key_and_json_webhooks() -> None:
    from twilio.request_validator import RequestValidator

    creds = Credentials(twilio_auth_token="authtok", twilio_shared_keys=("old", "new-secret"))
    client = _client(creds, transport="twilio")
    form = {"CallSid": "CA9", "From": "+1555"}
    sig = RequestValidator("new-secret").compute_signature(URL, form, "HMAC_SHA256")
    settings = "key=webhooks_sharedkey_01X,algorithm=HMAC_SHA256"
    headers = {"X-Twilio-Signature": sig, "X-Twilio-Webhooks-Signature-Settings": settings}
    assert client.post("/", data=form, headers=headers).status_code == 200
    # The same signature without the settings header is checked against the Auth Token: no.
    assert client.post("/", data=form, headers={"X-Twilio-Signature": sig}).status_code == 403

    body = json.dumps({"CallSid": "CA10", "From": "+1555"}).encode()
    url = f"{URL}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    sig = RequestValidator("authtok").compute_signature(url, {})
    ok = client.post(
        f"/?bodySHA256={hashlib.sha256(body).hexdigest()}",
        content=body,
        headers={"X-Twilio-Signature": sig, "content-type": "application/json"},
    )
    assert ok.status_code == 200 and "<Connect>" in ok.text
    # A URL-only signature does not cover an arbitrary JSON body.
    bare = RequestValidator("authtok").compute_signature(URL, {})
    forged = client.post(
        "/",
        content=b'{"CallSid": "CA11"}',
        headers={"X-Twilio-Signature": bare, "content-type": "application/json"},
    )
    assert forged.status_code == 403


# --------------------------------------------------------------------------- 4: body size


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"&" * min(size, total - sent)
        sent += size


def test_large_bodies_are_refused_before_parsing() -> None:
    client = _client()
    form = {"CallSid": "CA1"}
    headers = _twilio(form)["headers"]
    announced = client.post("/", content=b"&" * (MAX_WEBHOOK_BODY + 1), headers=headers)
    assert announced.status_code == 413
    streamed = client.post("/", content=_chunks(2 * 1024 * 1024), headers=headers)
    assert streamed.status_code == 413  # no Content-Length: read only up to the cap
    junk = client.post("/", content=b"x" * 100, headers={**headers, "content-length": "abc"})
    assert junk.status_code in (400, 413)


async def test_unsigned_request_is_refused_without_reading_its_body() -> None:
    """The body is announced but never sent: only a refusal made before reading it arrives."""
    app = create_app(_bot, RunnerConfig(proxy=HOST), credentials=TWILIO, secret=b"k" * 32)
    async with running_server(app) as addr:
        host, port = addr.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST / HTTP/1.1\r\nHost: bot.example\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n"
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 2.0)
        writer.close()
    assert status.startswith(b"HTTP/1.1 403")


def test_hostile_bodies_never_500() -> None:
    client = _client(insecure=True, transport="twilio")
    nested = b"[" * 50_000
    for content, ctype in (
        (nested, "application/json"),
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
        (b'{"CallSid": {"a": 1}, "From": [1]}', "application/json"),
        (b"null", "application/json"),
    ):
        resp = client.post("/", content=content, headers={"content-type": ctype})
        assert resp.status_code == 200, resp.text


# ------------------------------------------------------------------------ replay, binding


def test_replayed_webhook_gets_the_same_token_not_a_fresh_one() -> None:
    client = _client()
    request = _twilio({"CallSid": "CA77", "From": "+1555"})
    first = _token(client.post("/", **request).text)
    replays = {_token(client.post("/", **request).text) for _ in range(5)}
    assert replays == {first}
    other = _token(client.post("/", **_twilio({"CallSid": "CA78"})).text)
    assert other != first
    payload = base64.urlsafe_b64decode(first.split(".")[0] + "==")
    assert b"CA77" not in payload  # the call binding is an HMAC tag, not the id
    # A signed webhook without a call id could mint a token per replay: refused.
    assert client.post("/", **_twilio({"From": "+1555"})).status_code == 400


# -------------------------------------------------------------- /start, /metrics, /status


def test_start_needs_the_api_key_outside_local_mode() -> None:
    assert _client(Credentials(), transport="websocket").post("/start").status_code == 403
    client = _client(transport="websocket")
    assert client.post("/start").status_code == 401
    bad = client.post(
        "/start", headers={"Authorization": "Bearer wrong-key-\xfc".encode("latin-1")}
    )
    assert bad.status_code == 401
    ok = client.post("/start", headers={"Authorization": "Bearer api-key-0123456789"})
    assert ok.status_code == 200 and ok.json()["token"]
    local = _client(Credentials(), transport="websocket", insecure=True)
    assert local.post("/start").status_code == 200


def test_metrics_and_status_need_the_key_when_one_is_set() -> None:
    client = _client()
    key = {"Authorization": "Bearer api-key-0123456789"}
    for path in ("/metrics", "/status"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=key).status_code == 200
    open_client = _client(Credentials(twilio_auth_token="authtok"))
    assert open_client.get("/metrics").status_code == 200
    assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200


def test_api_docs_only_in_local_mode() -> None:
    client = _client()
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 404
    user_app = FastAPI()  # like the runner's module-level app: built with the docs routes
    assert "/docs" in {getattr(r, "path", None) for r in user_app.router.routes}
    create_app(_bot, RunnerConfig(proxy=HOST), credentials=TWILIO, secret=b"k" * 32, app=user_app)
    assert "/docs" not in {getattr(r, "path", None) for r in user_app.router.routes}
    assert _client(insecure=True).get("/openapi.json").status_code == 200


# ------------------------------------------------------------------------- output, logs


def test_plivo_answer_escapes_the_url() -> None:
    doc = answer_document("plivo", "h.example/a&b<c", token="t.k")
    stream = ET.fromstring(doc.body).find("Stream")
    assert stream is not None and stream.text == "wss://h.example/a&b<c/ws/t.k"


def test_local_mode_ignores_a_hostile_host_header() -> None:
    client = _client(Credentials(), insecure=True, transport="twilio", proxy=None)
    resp = client.post("/", data={"CallSid": "CA1"}, headers={"Host": 'x"><Hangup/>'})
    assert "Hangup" not in resp.text and 'url="wss://localhost:7860/ws"' in resp.text


def test_call_ids_are_logged_escaped(caplog: pytest.LogCaptureFixture) -> None:
    client = _client()
    forged = "CA12\nINFO fake line\r\x1b[2J"
    with caplog.at_level(logging.INFO):
        assert client.post("/", **_twilio({"CallSid": forged})).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("callpipe")]
    assert lines and all("\n" not in line and "\r" not in line for line in lines)
    assert any("answering call CA12" in line for line in lines)


async def test_disconnect_mid_body_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    creds = Credentials(twilio_auth_token="authtok")
    app = create_app(_bot, RunnerConfig(proxy=HOST), credentials=creds, secret=b"k" * 32)
    signature = _twilio({"CallSid": "CA1"})["headers"]["X-Twilio-Signature"]
    server_log = logging.getLogger("uvicorn.error")  # uvicorn's loggers do not propagate to root
    with caplog.at_level(logging.DEBUG):
        async with running_server(app) as addr:
            server_log.addHandler(caplog.handler)  # after uvicorn configured its logging
            host, port = addr.split(":")
            for _ in range(3):
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(
                    b"POST / HTTP/1.1\r\nHost: bot.example\r\nContent-Length: 5000\r\n"
                    b"X-Twilio-Signature: " + signature.encode() + b"\r\n\r\nCallSid=CA"
                )
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.close()
            await asyncio.sleep(0.2)
    server_log.removeHandler(caplog.handler)
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]
