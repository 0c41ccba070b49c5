"""create_transport / build_serializer: the right serializer per provider, credentials from env."""

from __future__ import annotations

from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.runner.types import CallData, TelnyxCallData, WebSocketRunnerArguments
from callpipe.runner.utils import build_serializer, create_transport
from callpipe.transports.network.fastapi_websocket import FastAPIWebsocketParams

ENV = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_KEY",
    "TWILIO_API_SECRET",
    "TWILIO_REGION",
    "TWILIO_EDGE",
    "TELNYX_API_KEY",
    "PLIVO_AUTH_ID",
    "PLIVO_AUTH_TOKEN",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


class ParsedSocket:
    """Stands in for a WebSocket whose handshake the runner already parsed (cached result)."""

    def __init__(self, transport_type: str, call_data: CallData) -> None:
        self._callpipe_parsed_telephony = (transport_type, call_data)

    async def receive(self) -> dict[str, Any]:  # pragma: no cover - must not be called
        raise AssertionError("handshake must come from the cache")


def _params() -> dict[str, Any]:
    return {p: FastAPIWebsocketParams for p in ("twilio", "telnyx", "plivo", "exotel", "vonage")}


async def test_twilio_with_credentials_has_call_control(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC1")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
    data = CallData(stream_id="MZ1", call_id="CA1")
    args = WebSocketRunnerArguments(ParsedSocket("twilio", data))  # type: ignore[arg-type]
    transport = await create_transport(args, _params())
    serializer = transport.params.serializer
    assert type(serializer).__name__ == "TwilioFrameSerializer"
    assert serializer.auto_hang_up and serializer.call_control is not None
    assert transport.params.add_wav_header is False
    assert args.transport_type == "twilio" and args.call_data is data
    assert args._serializer is serializer


@pytest.mark.parametrize(
    ("provider", "data", "cls"),
    [
        ("twilio", CallData(stream_id="MZ1", call_id="CA1"), "TwilioFrameSerializer"),
        (
            "telnyx",
            TelnyxCallData(stream_id="s", call_id="cc", outbound_encoding="PCMA"),
            "TelnyxFrameSerializer",
        ),
        ("plivo", CallData(stream_id="s", call_id="c"), "PlivoFrameSerializer"),
        ("exotel", CallData(stream_id="s", call_id="c"), "ExotelFrameSerializer"),
        ("vonage", CallData(call_id="c"), "VonageFrameSerializer"),
    ],
)
def test_without_credentials_hang_up_is_off_not_an_error(
    provider: str, data: CallData, cls: str
) -> None:
    serializer = build_serializer(provider, data)
    assert type(serializer).__name__ == cls
    assert not getattr(serializer, "auto_hang_up", False)


async def test_missing_params_and_unknown_provider() -> None:
    data = CallData(stream_id="MZ1", call_id="CA1")
    args = WebSocketRunnerArguments(ParsedSocket("twilio", data))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="Missing transport params for 'twilio'"):
        await create_transport(args, {"telnyx": FastAPIWebsocketParams})
    with pytest.raises(ConfigurationError, match="Unsupported telephony provider"):
        build_serializer("daily", data)


async def test_plain_websocket_clients_get_no_serializer() -> None:
    args = WebSocketRunnerArguments(ParsedSocket("twilio", CallData()), "websocket")  # type: ignore[arg-type]
    transport = await create_transport(args, {"websocket": FastAPIWebsocketParams})
    assert transport.params.serializer is None


async def test_pipecat_multi_transport_helpers_run_on_the_phone_branch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Pipecat's multi-transport example bots import these at the top and call them from
    # on_client_connected; on a phone call there is no video and the client id is the call's.
    from callpipe.runner.utils import (
        get_transport_client_id,
        maybe_capture_participant_camera,
        maybe_capture_participant_screen,
    )
    from callpipe.transports.base_transport import BaseTransport

    data = CallData(stream_id="MZ1", call_id="CA77")
    args = WebSocketRunnerArguments(ParsedSocket("twilio", data))  # type: ignore[arg-type]
    transport = await create_transport(args, _params())
    client = args.websocket
    assert get_transport_client_id(transport, client) == "CA77"
    assert transport.get_client_id(client) == "CA77"
    await maybe_capture_participant_camera(transport, client, framerate=1)
    await maybe_capture_participant_screen(transport, client)
    # A transport without client ids answers "" and says so (Pipecat's base behaviour).
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert BaseTransport().get_client_id(client) == ""
        await BaseTransport().capture_participant_video("p1")
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "this transport has no client ids",
        "no video on a phone call; nothing to capture",
    ]
