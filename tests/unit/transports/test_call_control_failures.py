"""A refused DTMF or transfer (provider refusal, bad target) is one WARNING, no traceback.

The transport's ``write_dtmf`` and ``transfer_call`` over Asterisk ARI call control, with ARI
answering through an in-memory HTTP transport.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import httpx
import pytest
from starlette.websockets import WebSocket

from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.telephony.asterisk import AsteriskAriCallControl
from callpipe.telephony.base import RetryPolicy
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketOutputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

CALL_ID = "CA0123456789abcdef"
CHANNEL = "1761245643.12"
CALLER = "1761245643.11"


def _output(
    status: int, body: dict[str, Any], caller: str | None = CALLER
) -> FastAPIWebsocketOutputTransport:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    serializer = TwilioFrameSerializer(
        "MZ0", CALL_ID, params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    serializer.call_control = AsteriskAriCallControl(
        base_url="http://pbx.example:8088/ari",
        channel_id=CHANNEL,
        username="u",
        password="p",
        caller_channel_id=caller,
        retry=RetryPolicy(timeout=2.0, retries=0),
        transport=httpx.MockTransport(reply),
    )
    params = FastAPIWebsocketParams(serializer=serializer)
    return FastAPIWebsocketTransport(cast(WebSocket, object()), params).output()


def _assert_one_warning(caplog: pytest.LogCaptureFixture, what: str, status: str) -> None:
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1, [r.getMessage() for r in records]
    (record,) = records
    line = record.getMessage()
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert what in line and status in line
    assert "CA01…ef" in line  # the masked call id
    assert CALL_ID not in line and CALLER not in line and "\n" not in line


@pytest.mark.parametrize("status", [500, 422])
async def test_dtmf_refused_by_ari_warns_once(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    output = _output(status, {"message": "Channel in invalid state"})
    with caplog.at_level(logging.DEBUG):
        assert await output.write_dtmf("12") is False
    _assert_one_warning(caplog, "DTMF", f"HTTP {status}")


async def test_transfer_refused_by_ari_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    output = _output(404, {"message": "Channel not found"})
    with caplog.at_level(logging.DEBUG):
        await output.transfer_call("PJSIP/agent")
    _assert_one_warning(caplog, "transfer", "HTTP 404 ")
    assert "Channel not found" in caplog.text


@pytest.mark.parametrize("target", ["+1555012345678901234567", "sip:+15550123456 <x>", "tel:"])
async def test_bad_transfer_target_warns_once_with_the_number_masked(
    target: str, caplog: pytest.LogCaptureFixture
) -> None:
    output = _output(204, {})
    with caplog.at_level(logging.DEBUG):
        await output.transfer_call(target)
    _assert_one_warning(caplog, "transfer", "invalid")
    line = caplog.records[-1].getMessage()
    assert "5550123" not in caplog.text  # no full phone number anywhere
    if target.startswith("+"):
        assert "…4567" in line  # the last 4 digits say which one it was


async def test_transfer_without_caller_channel_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    output = _output(204, {}, caller=None)  # ARI refuses locally: no caller channel
    with caplog.at_level(logging.DEBUG):
        await output.transfer_call("+15550123456")
    _assert_one_warning(caplog, "transfer", "CALLPIPE_CALLER_CHANNEL")
    assert "5550123" not in caplog.text


async def test_bad_dtmf_digits_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    output = _output(204, {})
    with caplog.at_level(logging.DEBUG):
        assert await output.write_dtmf("12x") is False
    _assert_one_warning(caplog, "DTMF", "invalid DTMF digits")
