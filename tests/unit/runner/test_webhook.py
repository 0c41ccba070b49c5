"""POST/GET / without a subprocess: provider detection, GET-signed Twilio webhooks, drain status."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from callpipe.runner.app import Credentials, RunnerConfig, create_app


async def _bot(args: Any) -> None:
    return None


def _client(config: RunnerConfig, credentials: Credentials | None = None) -> TestClient:
    app = create_app(_bot, config, credentials=credentials or Credentials(), secret=b"k" * 32)
    return TestClient(app)


def test_provider_detected_from_the_request_without_t() -> None:
    client = _client(RunnerConfig(proxy="h.example", insecure=True))  # local mode: shape only
    plivo = client.post("/", data={"CallUUID": "u1", "From": "1555"})
    assert "<Stream bidirectional" in plivo.text
    twilio = client.post("/", data={"CallSid": "CA1", "From": "+1555"})
    assert "<Connect>" in twilio.text and 'name="from_number"' in twilio.text
    exotel = client.get("/", params={"CallSid": "e1", "CallFrom": "0999"})
    assert exotel.json()["url"] == "wss://h.example/ws"  # local mode: no token
    vonage = client.get("/", params={"uuid": "v1", "conversation_uuid": "c1", "from": "1"})
    assert vonage.json()[0]["endpoint"][0]["headers"]["call_id"] == "v1"
    unknown = client.post("/", data={"hello": "world"})
    assert unknown.status_code == 400 and "-t" in unknown.json()["error"]


def test_twilio_get_webhook_signed_over_the_query_url() -> None:
    from twilio.request_validator import RequestValidator

    client = _client(
        RunnerConfig(transport="twilio", proxy="h.example"),
        Credentials(twilio_auth_token="authtok"),
    )
    query = "CallSid=CA1&From=%2B1555"
    sig = RequestValidator("authtok").compute_signature(f"https://h.example/?{query}", {})
    ok = client.get(f"/?{query}", headers={"X-Twilio-Signature": sig})
    assert ok.status_code == 200 and "wss://h.example/ws/" in ok.text
    bad = client.get("/?CallSid=CA2&From=%2B1555", headers={"X-Twilio-Signature": sig})
    assert bad.status_code == 403


def test_draining_webhook_is_503_with_busy_document() -> None:
    client = _client(RunnerConfig(transport="telnyx", proxy="h.example", insecure=True))
    client.app.state.runner.calls.draining = True  # type: ignore[attr-defined]
    resp = client.post("/", data={"CallSid": "v3:1"})
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
    assert '<Reject reason="busy"/>' in resp.text
    assert client.get("/ready").json() == {"ready": False, "active_calls": 0, "reason": "draining"}
    assert client.get("/health").json() == {"status": "ok"}


def test_insecure_answers_without_token_and_json_bodies_parse() -> None:
    client = _client(RunnerConfig(transport="telnyx", proxy="h.example", insecure=True))
    resp = client.post("/", json={"CallSid": "v3:1", "From": "+1555"})
    assert '<Stream url="wss://h.example/ws" bidirectionalMode="rtp">' in resp.text
    assert client.get("/status").json() == {"status": "ready", "transports": ["telnyx"]}
