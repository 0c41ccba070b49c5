"""parse_telephony_websocket: detection per provider, call data keys, timeout, garbage, caching."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from starlette.testclient import TestClient

from callpipe.errors import ProtocolError
from callpipe.runner.types import CallData
from callpipe.runner.utils import parse_telephony_websocket

from .fixtures import handshake


def _app(timeout: float = 2.0, then_read: bool = False) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            kind, data = await parse_telephony_websocket(websocket, timeout=timeout)
        except ProtocolError as exc:
            await websocket.send_json({"error": str(exc)})
            await websocket.close()
            return
        again = await parse_telephony_websocket(websocket, timeout=timeout)
        reply: dict[str, Any] = {
            "type": kind,
            "data": data.model_dump(by_alias=True),
            "same": again[1] is data,
        }
        if then_read:
            reply["next"] = await websocket.receive_text()
        await websocket.send_json(reply)
        await websocket.close()

    return app


def _run(messages: list[str | bytes], **kw: Any) -> dict[str, Any]:
    with TestClient(_app(**kw)) as client, client.websocket_connect("/ws") as ws:
        for message in messages:
            if isinstance(message, bytes):
                ws.send_bytes(message)
            else:
                ws.send_text(message)
        return dict(ws.receive_json())


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        (
            "twilio",
            {
                "stream_id": "MZ1",
                "call_id": "CA1",
                "from": "+15551112222",
                "to": None,
                "body": {"from_number": "+15551112222"},
            },
        ),
        (
            "telnyx",
            {
                "stream_id": "MZ1",
                "call_id": "CA1",
                "from": "+15551112222",
                "to": "+15553334444",
                "outbound_encoding": "PCMA",
            },
        ),
        (
            "plivo",
            {
                "stream_id": "MZ1",
                "call_id": "CA1",
                "from": "15551112222",
                "to": "15553334444",
            },
        ),
        (
            "exotel",
            {
                "stream_id": "MZ1",
                "call_id": "CA1",
                "from": "+919876543210",
                "to": "+918047491899",
                "account_sid": "exo_acc",
                "custom_parameters": {"key1": "value1"},
            },
        ),
        (
            "vonage",
            {
                "call_id": "CA1",
                "from": "15551112222",
                "to": "15553334444",
                "content_type": "audio/l16;rate=16000",
            },
        ),
    ],
)
def test_detects_each_provider(provider: str, expected: dict[str, Any]) -> None:
    reply = _run(handshake(provider, stream_id="MZ1", call_id="CA1"))
    assert reply["type"] == provider
    for key, value in expected.items():
        assert reply["data"][key] == value, key
    assert reply["same"] is True


def test_spec_minimal_fixtures_still_detected() -> None:
    minimal = {
        "twilio": {"event": "start", "start": {"streamSid": "MZ123", "callSid": "CA123"}},
        "telnyx": {"stream_id": "s", "start": {"call_control_id": "cc", "from": "+1", "to": "+2"}},
        "plivo": {"start": {"streamId": "sp", "callId": "cp"}},
        "exotel": {
            "event": "start",
            "start": {"stream_sid": "se", "call_sid": "ce", "account_sid": "a"},
        },
    }
    for provider, message in minimal.items():
        assert _run([json.dumps(message)])["type"] == provider


def test_start_first_provider_does_not_swallow_media() -> None:
    media = json.dumps({"event": "media", "media": {"payload": "AAAA"}})
    reply = _run([*handshake("plivo", stream_id="s", call_id="c"), media], then_read=True)
    assert reply["type"] == "plivo"
    assert reply["next"] == media


def test_binary_frames_are_read() -> None:
    start = handshake("twilio", stream_id="MZ9", call_id="CA9")[1].encode()
    assert _run([b"\x00\x01garbage", start])["type"] == "twilio"


def test_silent_peer_times_out_with_clear_error() -> None:
    reply = _run([], timeout=0.2)
    assert "no telephony handshake within 0.2s" in reply["error"]


def test_garbage_and_unknown_dialect() -> None:
    reply = _run(["hello", b"\xff\xfe", json.dumps({"event": "hi"})])
    assert "unknown telephony dialect" in reply["error"]
    assert "non-JSON text" in reply["error"] and "binary frame" in reply["error"]


async def test_disconnect_raises_protocol_error() -> None:
    class Fake:
        def __init__(self) -> None:
            self.messages = [{"type": "websocket.receive", "text": '{"event":"connected"}'}]

        async def receive(self) -> dict[str, Any]:
            return self.messages.pop(0) if self.messages else {"type": "websocket.disconnect"}

    with pytest.raises(ProtocolError, match="closed before the telephony handshake"):
        await parse_telephony_websocket(Fake())  # type: ignore[arg-type]


def test_call_data_is_dict_compatible() -> None:
    cd = CallData.model_validate({"stream_id": "s", "call_id": "c", "from": "+1"})
    assert cd["call_id"] == "c"
    assert cd["from"] == "+1" and cd.from_number == "+1"
    assert "to" not in cd and "from" in cd
    assert cd.get("to", "x") == "x"
    with pytest.raises(KeyError):
        cd["call_control_id"]
