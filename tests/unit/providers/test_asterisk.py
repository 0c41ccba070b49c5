"""Asterisk through the provider registry: MEDIA_START detection, credentials, the runner's checks.

Asterisk has no answer webhook: it opens the media WebSocket itself, with the ``username`` and
``password`` of its ``websocket_client.conf`` connection as HTTP Basic auth (or a one-time stream
token an ARI application put in the URI with ``v(callpipe_token=...)``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.datastructures import Headers
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from callpipe.providers import registry
from callpipe.providers.asterisk import ASTERISK, AsteriskCallData
from callpipe.providers.asterisk.auth import BasicAuthVerifier, basic_credentials, basic_header
from callpipe.providers.asterisk.dialect import AsteriskDialect, AsteriskJsonDialect
from callpipe.providers.base import SignedWebhook
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.utils import build_serializer
from callpipe.serializers.asterisk import AsteriskFrameSerializer

PLAIN_START = (
    "MEDIA_START connection_id:e226e283-c90a-4ea9-9e37-389000b9ef47 channel:WebSocket/connectionid"
    " channel_id:pbx1-123456789.999 format:ulaw optimal_frame_size:160 ptime:20"
)
JSON_START = {
    "event": "MEDIA_START",
    "connection_id": "media_connection1",
    "channel": "WebSocket/media_connection1/0x5140001a0040",
    "channel_id": "1761245643.1",
    "format": "slin16",
    "optimal_frame_size": 640,
    "ptime": 20,
    "channel_variables": {
        "DIALEDPEERNUMBER": "media_connection1/c(slin16)",
        "MEDIA_WEBSOCKET_CONNECTION_ID": "media_connection1",
        "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": "640",
    },
}
AUTH = "asterisk-pbx1:s3cret:with:colons"


def _detect(text: str) -> AsteriskCallData:
    message = registry.parse_text(text) if not text.startswith("{") else json.loads(text)
    assert message is not None
    detected = registry.detect_stream(message)
    assert detected is not None and detected[0] is ASTERISK
    assert isinstance(detected[1], AsteriskCallData)
    return detected[1]


def test_plain_text_media_start_is_detected_as_asterisk() -> None:
    call = _detect(PLAIN_START)
    assert (call.call_id, call.stream_id) == (
        "pbx1-123456789.999",
        "e226e283-c90a-4ea9-9e37-389000b9ef47",
    )
    assert (call.format, call.optimal_frame_size, call.ptime) == ("ulaw", 160, 20)
    assert call.control_format == "plain-text" and call.channel == "WebSocket/connectionid"


def test_json_media_start_carries_the_channel_variables() -> None:
    call = _detect(json.dumps(JSON_START))
    assert call.call_id == "1761245643.1" and call.control_format == "json"
    assert call.format == "slin16" and call.channel_variables["DIALEDPEERNUMBER"].startswith(
        "media"
    )
    serializer = build_serializer("asterisk", call)
    assert isinstance(serializer, AsteriskFrameSerializer)
    assert serializer.wire_sample_rate == 16000 and serializer.control_format == "json"
    assert serializer.call_id == "1761245643.1"


def test_the_first_releases_media_start_without_channel_id() -> None:
    call = _detect(
        "MEDIA_START connection_id:e226e283-c90a-4ea9-9e37-389000b9ef47 "
        "channel:WebSocket/connectionid format:ulaw optimal_frame_size:160"
    )
    assert call.call_id == call.stream_id == "e226e283-c90a-4ea9-9e37-389000b9ef47"


@pytest.mark.parametrize(
    "message",
    [
        {"event": "MEDIA_START"},
        {"event": "MEDIA_START", "connection_id": 5},
        {"event": "start", "connection_id": "x"},
        {"event": "MEDIA_START", "channel_id": "1.2", "channel_variables": "nope", "ptime": "x"},
    ],
)
def test_detection_is_total(message: dict[str, Any]) -> None:
    found = ASTERISK.detect_stream(message)
    if found is not None:  # only the last one: a channel id is enough
        assert found.get("ptime") == 20 and found.get("channel_variables") == {}


def test_no_other_provider_takes_media_start_and_asterisk_takes_no_other() -> None:
    for provider in registry.PROVIDERS:
        if provider is ASTERISK:
            continue
        assert provider.detect_stream(JSON_START) is None, provider.name
        assert provider.parse_text(PLAIN_START) is None, provider.name
        for message in provider.dialect().handshake():
            assert ASTERISK.parse_text(message) is None
            try:
                decoded = json.loads(message)
            except ValueError:
                continue
            assert ASTERISK.detect_stream(decoded) is None, provider.name
    assert ASTERISK.parse_text("DTMF_END digit:5") is None  # only MEDIA_START starts a stream


@pytest.mark.parametrize("dialect", [AsteriskDialect, AsteriskJsonDialect])
def test_dialects_speak_what_the_serializer_reads(dialect: type[AsteriskDialect]) -> None:
    d = dialect()
    call = _detect(d.handshake()[0])
    assert call.call_id == d.identity.call_id
    serializer = build_serializer("asterisk", call)
    assert isinstance(serializer, AsteriskFrameSerializer)
    mark = serializer.serialize_mark("cp0-1")
    event = d.parse(mark)
    assert (event.kind, event.name) == ("mark", "cp0-1")
    flush = serializer._clear()
    assert d.parse(flush).kind == "clear"
    other_format = "FLUSH_MEDIA" if flush.startswith("{") else '{"command":"FLUSH_MEDIA"}'
    assert d.parse(other_format).kind == "invalid"  # Asterisk reads only the call's format
    assert _detect(d.handshake()[0]).control_format == d.control_format


# ---------------------------------------------------------------------------- credentials


def test_basic_credentials_parse_and_compare() -> None:
    header = basic_header("asterisk-pbx1", "s3cret:with:colons")
    assert basic_credentials(header) == ("asterisk-pbx1", "s3cret:with:colons")
    verifier = BasicAuthVerifier(AUTH)

    def request(value: str | None) -> SignedWebhook:
        headers = Headers({"authorization": value} if value is not None else {})
        return SignedWebhook("GET", "", headers, b"", is_form=False)

    assert verifier.verify(request(header))
    assert not verifier.verify(request(basic_header("asterisk-pbx1", "wrong")))
    assert not verifier.verify(request(basic_header("other", "s3cret:with:colons")))
    for bad in (None, "", "Basic", "Basic !!!", "Bearer abc", "Basic " + "A" * 5000, "Basic w6k="):
        assert not verifier.verify(request(bad))
    bare = BasicAuthVerifier("only-a-password")
    assert bare.verify(request(basic_header("asterisk", "only-a-password")))
    assert ASTERISK.webhook_verifier({"ASTERISK_WS_AUTH": "user:"}) is None  # no password


async def _bot(args: Any) -> None:
    await args.websocket.send_text(json.dumps([args.transport_type, args.call_data.call_id]))


def _secure_app(**secrets: str) -> TestClient:
    config = RunnerConfig(transport="asterisk", host="0.0.0.0")
    app = create_app(_bot, config, credentials=Credentials(extra=secrets), secret=b"k" * 32)
    return TestClient(app)


def test_production_stream_with_the_configured_basic_auth_is_admitted() -> None:
    client = _secure_app(ASTERISK_WS_AUTH=AUTH)
    headers = {"Authorization": basic_header("asterisk-pbx1", "s3cret:with:colons")}
    with client.websocket_connect("/ws", headers=headers) as ws:
        ws.send_text(PLAIN_START)
        assert json.loads(ws.receive_text()) == ["asterisk", "pbx1-123456789.999"]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no credentials, no token
        {"Authorization": basic_header("asterisk-pbx1", "guess")},
        {"Authorization": "Basic not-base64"},
    ],
)
def test_production_refuses_unauthenticated_streams(headers: dict[str, str]) -> None:
    client = _secure_app(ASTERISK_WS_AUTH=AUTH)
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/ws", headers=headers) as ws:
            ws.send_text(PLAIN_START)
            ws.receive_text()
    assert refused.value.code in (1008, 4003)


def test_basic_auth_without_configured_credentials_is_refused() -> None:
    client = _secure_app()
    headers = {"Authorization": basic_header("asterisk", "anything")}
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/ws", headers=headers) as ws:
            ws.send_text(PLAIN_START)
            ws.receive_text()
    assert refused.value.code == 1008


def test_asterisk_credentials_do_not_admit_another_providers_stream() -> None:
    client = _secure_app(ASTERISK_WS_AUTH=AUTH)
    headers = {"Authorization": basic_header("asterisk-pbx1", "s3cret:with:colons")}
    twilio_start = registry.require("twilio").dialect().handshake()
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/ws", headers=headers) as ws:
            for message in twilio_start:
                ws.send_text(message)
            ws.receive_text()
    assert refused.value.code == 4003


def test_ari_app_gets_a_one_time_token_that_admits_one_stream() -> None:
    config = RunnerConfig(transport="asterisk", proxy="bot.example")
    creds = Credentials(extra={"ASTERISK_WS_AUTH": AUTH})
    client = TestClient(create_app(_bot, config, credentials=creds, secret=b"k" * 32))
    auth = {"Authorization": basic_header("asterisk-pbx1", "s3cret:with:colons")}
    assert client.post("/", data={"channel_id": "1761245643.1"}).status_code == 403
    answer = client.post("/", data={"channel_id": "1761245643.1"}, headers=auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["url"] == f"wss://bot.example/ws/{body['token']}"
    assert body["dial_option"] == f"v(callpipe_token={body['token']})"
    path = f"/ws?callpipe_token={body['token']}"  # what v(callpipe_token=...) appends
    with client.websocket_connect(path) as ws:
        ws.send_text(PLAIN_START)
        assert json.loads(ws.receive_text())[0] == "asterisk"
    with pytest.raises(WebSocketDisconnect):  # single use
        with client.websocket_connect(path) as ws:
            ws.send_text(PLAIN_START)
            ws.receive_text()


def test_local_mode_takes_a_plain_text_stream_without_credentials() -> None:
    app = create_app(_bot, RunnerConfig(insecure=True), credentials=Credentials(), secret=b"k" * 32)
    with TestClient(app).websocket_connect("/ws") as ws:
        ws.send_text(PLAIN_START)
        assert json.loads(ws.receive_text()) == ["asterisk", "pbx1-123456789.999"]


def test_a_token_decides_when_the_basic_header_is_not_asterisks() -> None:
    """A stream URL with user:pass (some carriers send it as Basic auth) still rides its token."""
    config = RunnerConfig(transport="asterisk", proxy="bot.example")
    creds = Credentials(extra={"ASTERISK_WS_AUTH": AUTH})
    client = TestClient(create_app(_bot, config, credentials=creds, secret=b"k" * 32))
    auth = {"Authorization": basic_header("asterisk-pbx1", "s3cret:with:colons")}
    token = client.post("/", data={"channel_id": "1.2"}, headers=auth).json()["token"]
    other = {"Authorization": basic_header("user", "url-credentials")}
    with client.websocket_connect(f"/ws/{token}", headers=other) as ws:
        ws.send_text(PLAIN_START)
        assert json.loads(ws.receive_text())[0] == "asterisk"


def test_a_public_runner_starts_only_with_asterisk_credentials() -> None:
    from callpipe.runner.run import startup_refusal

    config = RunnerConfig(transport="asterisk", proxy="bot.example")
    assert "ASTERISK_WS_AUTH" in (startup_refusal(config, {}) or "")
    assert startup_refusal(config, {"ASTERISK_WS_AUTH": "pbx1:s3cret"}) is None
