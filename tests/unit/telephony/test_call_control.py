"""Call control against a local HTTP server: requests, auth, retries, "already ended", timeouts."""

from __future__ import annotations

import socket
import time
from urllib.parse import parse_qs

import pytest

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.serializers.plivo import PlivoFrameSerializer
from callpipe.serializers.telnyx import TelnyxFrameSerializer
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.telephony.base import RetryPolicy
from callpipe.telephony.plivo import PlivoCallControl
from callpipe.telephony.telnyx import TelnyxCallControl
from callpipe.telephony.twilio import TwilioCallControl

from ._server import ProviderServer, Reply, basic

FAST = RetryPolicy(timeout=3.0, retries=2, backoff=0.01)


def twilio(server: ProviderServer, **kwargs: object) -> TwilioCallControl:
    args: dict[str, object] = {"account_sid": "AC1", "call_sid": "CA1", "auth_token": "tok"}
    args.update({"retry": FAST, **kwargs})
    return TwilioCallControl(base_url=server.url, **args)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- Twilio


async def test_twilio_hang_up_request_shape_and_idempotence(server: ProviderServer) -> None:
    cc = twilio(server)
    assert await cc.hang_up() is True
    assert await cc.hang_up() is True  # no second request
    await cc.aclose()
    assert len(server.requests) == 1
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/2010-04-01/Accounts/AC1/Calls/CA1.json")
    assert req.headers["authorization"] == basic("AC1", "tok")
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.body == b"Status=completed"


async def test_twilio_api_key_auth(server: ProviderServer) -> None:
    cc = twilio(server, auth_token=None, api_key_sid="SK1", api_key_secret="sec")
    assert await cc.hang_up()
    await cc.aclose()
    assert server.requests[0].headers["authorization"] == basic("SK1", "sec")


@pytest.mark.parametrize(
    "reply",
    [
        Reply(404, {"code": 20404, "message": "The requested resource was not found"}),
        Reply(400, {"code": 21220, "message": "Call is not in-progress"}),
    ],
)
async def test_twilio_already_ended_is_success(server: ProviderServer, reply: Reply) -> None:
    server.script(reply)
    cc = twilio(server)
    assert await cc.hang_up() is True
    await cc.aclose()


async def test_twilio_500_is_retried(server: ProviderServer) -> None:
    server.script(Reply(500), Reply(503), Reply(200, {"status": "completed"}))
    cc = twilio(server)
    assert await cc.hang_up() is True
    await cc.aclose()
    assert len(server.requests) == 3
    assert {r.body for r in server.requests} == {b"Status=completed"}


async def test_twilio_persistent_errors_fail_without_raising(server: ProviderServer) -> None:
    server.script(Reply(500), Reply(500), Reply(500), Reply(401, {"code": 20003}))
    cc = twilio(server)
    assert await cc.hang_up() is False
    assert len(server.requests) == 3  # 1 + 2 retries, then give up
    assert await cc.hang_up() is False  # a 4xx is not retried
    assert len(server.requests) == 4
    await cc.aclose()


async def test_hanging_server_is_cut_by_the_deadline(server: ProviderServer) -> None:
    server.script(Reply(hang=True), Reply(hang=True), Reply(hang=True))
    cc = twilio(server, retry=RetryPolicy(timeout=0.3, retries=2, backoff=0.01))
    started = time.monotonic()
    assert await cc.hang_up() is False
    # Bounded by the 0.3 s deadline (generous margin: this is a functional bound, not a benchmark).
    assert time.monotonic() - started < 3.0
    await cc.aclose()


async def test_connection_refused_is_retried_then_reported() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    cc = TwilioCallControl(
        account_sid="AC1", call_sid="CA1", auth_token="t", base_url=f"http://127.0.0.1:{port}"
    )
    cc._retry = RetryPolicy(timeout=2.0, retries=2, backoff=0.01)
    assert await cc.hang_up() is False
    with pytest.raises(CallControlError, match="3 attempts"):
        await cc.transfer("+15551234567")
    await cc.aclose()


async def test_twilio_transfer_twiml(server: ProviderServer) -> None:
    cc = twilio(server)
    await cc.transfer("+1 555 123-4567")
    await cc.transfer("sip:agent@example.com;transport=tls")
    form = [parse_qs(r.body.decode()) for r in server.requests]
    assert form[0] == {"Twiml": ["<Response><Dial>+15551234567</Dial></Response>"]}
    assert form[1] == {
        "Twiml": [
            "<Response><Dial><Sip>sip:agent@example.com;transport=tls</Sip></Dial></Response>"
        ]
    }
    assert all(r.path.endswith("/Calls/CA1.json") for r in server.requests)
    server.script(Reply(400, {"code": 21220}))
    with pytest.raises(CallControlError, match="HTTP 400"):
        await cc.transfer("+15551234567")
    with pytest.raises(ConfigurationError):
        await cc.transfer("<Hangup/>")
    assert await cc.send_dtmf("123") is False  # in-band tones instead
    assert len(server.requests) == 3
    await cc.aclose()


async def test_serializer_call_control_uses_base_url(server: ProviderServer) -> None:
    ser = TwilioFrameSerializer("MZ1", "CA9", "AC9", "tok", base_url=server.url + "/")
    assert ser.call_control is not None
    assert await ser.call_control.hang_up()
    await ser.call_control.aclose()
    assert server.requests[0].path == "/2010-04-01/Accounts/AC9/Calls/CA9.json"


# ---------------------------------------------------------------------------- Telnyx


def telnyx(server: ProviderServer) -> TelnyxCallControl:
    return TelnyxCallControl(
        call_control_id="v3:cc-1", api_key="KEY", base_url=server.url, retry=FAST
    )


async def test_telnyx_hang_up(server: ProviderServer) -> None:
    server.script(Reply(500), Reply(200, {"data": {"result": "ok"}}))
    cc = telnyx(server)
    assert await cc.hang_up() is True
    await cc.aclose()
    first, second = server.requests
    assert (first.method, first.path) == ("POST", "/v2/calls/v3:cc-1/actions/hangup")
    assert first.headers["authorization"] == "Bearer KEY"
    assert first.headers["content-type"] == "application/json"
    # The retry repeats the same command_id, so Telnyx can drop a duplicate.
    assert first.json() == second.json() and set(first.json()) == {"command_id"}


@pytest.mark.parametrize(
    ("reply", "ok"),
    [
        (Reply(422, {"errors": [{"code": "90018", "title": "Call has already ended"}]}), True),
        (Reply(404, {"errors": [{"code": "10005"}]}), True),
        (Reply(422, {"errors": [{"code": "90015", "title": "Invalid value"}]}), False),
        (Reply(422, ["not", "an", "object"]), False),
    ],
)
async def test_telnyx_already_ended(server: ProviderServer, reply: Reply, ok: bool) -> None:
    server.script(reply)
    cc = telnyx(server)
    assert await cc.hang_up() is ok
    await cc.aclose()


async def test_telnyx_transfer_and_dtmf(server: ProviderServer) -> None:
    cc = telnyx(server)
    await cc.transfer("sip:queue@pbx.example.com")
    assert await cc.send_dtmf("12*#") is True
    await cc.aclose()
    transfer, dtmf = server.requests
    assert transfer.path == "/v2/calls/v3:cc-1/actions/transfer"
    assert transfer.json()["to"] == "sip:queue@pbx.example.com"
    assert dtmf.path == "/v2/calls/v3:cc-1/actions/send_dtmf"
    body = dtmf.json()
    assert (body["digits"], body["duration_millis"]) == ("12*#", 250)
    assert transfer.json()["command_id"] != body["command_id"]
    with pytest.raises(ConfigurationError):
        await cc.send_dtmf("12x")


async def test_telnyx_serializer_builds_call_control(server: ProviderServer) -> None:
    ser = TelnyxFrameSerializer("s1", "PCMU", "PCMU", "v3:cc-2", "KEY", base_url=server.url)
    assert ser.call_control is not None and await ser.call_control.hang_up()
    await ser.call_control.aclose()
    assert server.requests[0].path == "/v2/calls/v3:cc-2/actions/hangup"


# ---------------------------------------------------------------------------- Plivo


def plivo(server: ProviderServer, **kwargs: object) -> PlivoCallControl:
    return PlivoCallControl(
        auth_id="MA1",
        auth_token="tok",
        call_uuid="uuid-1",
        base_url=server.url,
        retry=FAST,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_plivo_hang_up(server: ProviderServer) -> None:
    server.script(Reply(204))
    cc = plivo(server)
    assert await cc.hang_up() is True
    await cc.aclose()
    req = server.requests[0]
    assert (req.method, req.path, req.body) == ("DELETE", "/v1/Account/MA1/Call/uuid-1/", b"")
    assert req.headers["authorization"] == basic("MA1", "tok")


async def test_plivo_404_is_already_ended(server: ProviderServer) -> None:
    server.script(Reply(404, {"error": "not found"}))
    cc = plivo(server)
    assert await cc.hang_up() is True
    await cc.aclose()


async def test_plivo_transfer_and_dtmf(server: ProviderServer) -> None:
    server.script(Reply(202), Reply(202), Reply(202))
    cc = plivo(server, transfer_url="https://bot.example.com/plivo/transfer")
    await cc.transfer("https://bot.example.com/xml/queue")
    await cc.transfer("+15551234567")
    assert await cc.send_dtmf("1w2#") is True
    await cc.aclose()
    url_transfer, number_transfer, dtmf = server.requests
    assert url_transfer.path == "/v1/Account/MA1/Call/uuid-1/"
    assert url_transfer.headers["content-type"] == "application/json"
    assert url_transfer.json() == {
        "legs": "aleg",
        "aleg_url": "https://bot.example.com/xml/queue",
        "aleg_method": "POST",
    }
    assert number_transfer.json()["aleg_url"] == (
        "https://bot.example.com/plivo/transfer?target=%2B15551234567"
    )
    assert dtmf.path == "/v1/Account/MA1/Call/uuid-1/DTMF/"
    assert dtmf.json() == {"digits": "1w2#", "leg": "aleg"}
    with pytest.raises(ConfigurationError, match="transfer_url"):
        await plivo(server).transfer("+15551234567")


async def test_plivo_serializer_builds_call_control(server: ProviderServer) -> None:
    ser = PlivoFrameSerializer("st1", "uuid-9", "MA9", "tok", base_url=server.url)
    assert ser.call_control is not None and await ser.call_control.hang_up()
    await ser.call_control.aclose()
    assert server.requests[0].path == "/v1/Account/MA9/Call/uuid-9/"
