"""Pipecat's browser/WebRTC runner arguments exist; create_transport refuses them by name, and
on a phone call the bot's factories for other transports are never called."""

from __future__ import annotations

from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.runner.types import (
    CallData,
    DailyDialinRequest,
    DailyRunnerArguments,
    LiveKitRunnerArguments,
    RunnerArguments,
    SmallWebRTCRunnerArguments,
    WebSocketRunnerArguments,
)
from callpipe.runner.utils import create_transport
from callpipe.transports.network.fastapi_websocket import FastAPIWebsocketParams


def refuse() -> Any:
    raise AssertionError("factory of another transport called")


PARAMS = {"daily": refuse, "webrtc": refuse, "livekit": refuse, "twilio": FastAPIWebsocketParams}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (DailyRunnerArguments("https://x.daily.co/room", "tok"), "Daily WebRTC rooms"),
        (SmallWebRTCRunnerArguments(object()), "SmallWebRTC"),
        (LiveKitRunnerArguments("room", "wss://lk", "tok"), "LiveKit rooms"),
    ],
)
async def test_browser_sessions_are_refused_by_name(args: RunnerArguments, named: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{type(args).__name__}: {named}.*not provided"):
        await create_transport(args, PARAMS)


def test_fields_follow_pipecat() -> None:
    daily = DailyRunnerArguments("https://x.daily.co/room", body={"a": 1})
    assert (daily.room_url, daily.token, daily.body) == ("https://x.daily.co/room", None, {"a": 1})
    assert daily.handle_sigint is False
    request = DailyDialinRequest.model_validate(
        {
            "dialin_settings": {"call_id": "c", "call_domain": "d", "From": "+1555"},
            "daily_api_key": "k",
            "daily_api_url": "https://api.daily.co/v1",
        }
    )
    assert request.dialin_settings.From == "+1555"


class ParsedSocket:
    """A WebSocket whose Twilio handshake the runner already read."""

    def __init__(self) -> None:
        self._callpipe_parsed_telephony = ("twilio", CallData(stream_id="MZ1", call_id="CA1"))


async def test_a_phone_call_ignores_the_other_transports_factories() -> None:
    args = WebSocketRunnerArguments(ParsedSocket())  # type: ignore[arg-type]
    transport = await create_transport(args, PARAMS)
    assert type(transport).__name__ == "FastAPIWebsocketTransport"
    assert args.transport_type == "twilio"
