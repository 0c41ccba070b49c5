"""parse_telephony_websocket speaks Pipecat 1.14's call-data keys and error type."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from starlette.testclient import TestClient

from callpipe.errors import ProtocolError
from callpipe.runner.utils import TelephonyHandshakeError, parse_telephony_websocket

from .fixtures import handshake

# Keys a Pipecat 1.14 bot reads with call_data[...] for each provider (all must be present).
PIPECAT_KEYS = {
    "twilio": {"stream_id", "call_id", "body", "from", "to"},
    "telnyx": {"stream_id", "call_id", "outbound_encoding", "from", "to", "call_control_id"},
    "plivo": {"stream_id", "call_id"},
    "exotel": {"stream_id", "call_id", "account_sid", "from", "to", "custom_parameters"},
}


def _serve(messages: list[str]) -> dict[str, Any]:
    app = FastAPI()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            kind, data = await parse_telephony_websocket(websocket, timeout=2.0)
        except ValueError as exc:  # what a Pipecat bot catches
            await websocket.send_json({"error": type(exc).__name__})
        else:
            values = {key: data[key] for key in PIPECAT_KEYS[kind]}  # KeyError = test failure
            await websocket.send_json({"type": kind, "values": values})
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        for message in messages:
            ws.send_text(message)
        return dict(ws.receive_json())


@pytest.mark.parametrize("provider", sorted(PIPECAT_KEYS))
def test_every_pipecat_key_is_there(provider: str) -> None:
    reply = _serve(handshake(provider, stream_id="MZ9", call_id="CA9"))
    assert reply["type"] == provider
    assert reply["values"]["stream_id"] == "MZ9"
    assert reply["values"]["call_id"] == "CA9"


def test_telnyx_call_control_id_is_the_call_id() -> None:
    reply = _serve(handshake("telnyx", stream_id="s1", call_id="v3:abc"))
    assert reply["values"]["call_control_id"] == "v3:abc" == reply["values"]["call_id"]


@pytest.mark.parametrize(
    "messages",
    [
        [json.dumps({"event": "connected"}), "not json", json.dumps({"event": "media"})],
        [json.dumps({"event": "start", "start": {}})] * 3,
    ],
)
def test_bad_handshake_raises_a_value_error(messages: list[str]) -> None:
    assert _serve(messages) == {"error": "TelephonyHandshakeError"}
    assert issubclass(TelephonyHandshakeError, ValueError)
    assert issubclass(TelephonyHandshakeError, ProtocolError)
