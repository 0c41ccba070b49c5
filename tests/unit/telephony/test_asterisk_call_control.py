"""Asterisk ARI call control against a local HTTP server: hang-up, redirect and DTMF requests."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.telephony.asterisk import AsteriskAriCallControl, redirect_endpoint
from callpipe.telephony.base import RetryPolicy

from ._server import ProviderServer, Reply

FAST = RetryPolicy(timeout=3.0, retries=2, backoff=0.01)
WS_CHANNEL = "1761245643.7"
CALLER = "1761245640.3"
BASIC = "Basic " + base64.b64encode(b"callpipe:ari-s3cret").decode()


def _control(server: ProviderServer, caller: str | None = CALLER) -> AsteriskAriCallControl:
    return AsteriskAriCallControl(
        base_url=f"{server.url}/ari",
        channel_id=WS_CHANNEL,
        username="callpipe",
        password="ari-s3cret",
        caller_channel_id=caller,
        retry=FAST,
    )


def _split(target: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(target)
    return parts.path, parse_qs(parts.query)


async def test_hang_up_deletes_the_websocket_channel_once(server: ProviderServer) -> None:
    server.script(Reply(204))
    cc = _control(server)
    assert await cc.hang_up() is True
    assert await cc.hang_up() is True  # idempotent: no second request
    await cc.aclose()
    assert len(server.requests) == 1
    req = server.requests[0]
    path, query = _split(req.path)
    assert (req.method, path) == ("DELETE", f"/ari/channels/{WS_CHANNEL}")
    assert query == {"reason": ["normal"]}
    assert req.headers["authorization"] == BASIC


async def test_hang_up_of_a_gone_channel_is_success_and_5xx_is_retried(
    server: ProviderServer,
) -> None:
    server.script(Reply(500), Reply(503), Reply(404, {"message": "Channel not found"}))
    cc = _control(server)
    assert await cc.hang_up() is True
    await cc.aclose()
    assert [r.method for r in server.requests] == ["DELETE"] * 3


async def test_hang_up_refused_is_false_and_not_remembered(server: ProviderServer) -> None:
    server.script(Reply(401), Reply(204))
    cc = _control(server)
    assert await cc.hang_up() is False  # wrong ARI credentials: reported, never raised
    assert await cc.hang_up() is True
    await cc.aclose()
    assert len(server.requests) == 2


async def test_transfer_redirects_the_caller_channel(server: ProviderServer) -> None:
    server.script(Reply(204))
    cc = _control(server)
    await cc.transfer("PJSIP/agent-7")
    await cc.aclose()
    req = server.requests[0]
    path, query = _split(req.path)
    assert (req.method, path) == ("POST", f"/ari/channels/{CALLER}/redirect")
    assert query == {"endpoint": ["PJSIP/agent-7"]}
    assert req.headers["authorization"] == BASIC


async def test_dialplan_target_continues_the_caller_in_the_dial_plan(
    server: ProviderServer,
) -> None:
    server.script(Reply(204), Reply(204))
    cc = _control(server)
    await cc.transfer("dialplan:agents,2000,3")
    await cc.transfer("dialplan:queues,sales")
    with pytest.raises(ConfigurationError):
        await cc.transfer("dialplan:agents")
    await cc.aclose()
    assert len(server.requests) == 2
    path, query = _split(server.requests[0].path)
    assert (server.requests[0].method, path) == ("POST", f"/ari/channels/{CALLER}/continue")
    assert query == {"context": ["agents"], "extension": ["2000"], "priority": ["3"]}
    _, query = _split(server.requests[1].path)
    assert query == {"context": ["queues"], "extension": ["sales"], "priority": ["1"]}


async def test_transfer_to_a_number_goes_through_pjsip(server: ProviderServer) -> None:
    server.script(Reply(204))
    cc = _control(server)
    await cc.transfer("+1 555-123-4567")
    await cc.aclose()
    _, query = _split(server.requests[0].path)
    assert query == {"endpoint": ["PJSIP/+15551234567"]}


async def test_transfer_4xx_is_an_error_without_retry(server: ProviderServer) -> None:
    server.script(Reply(409, {"message": "Channel not in Stasis application"}))
    cc = _control(server)
    with pytest.raises(CallControlError, match="409"):
        await cc.transfer("PJSIP/agent")
    await cc.aclose()
    assert len(server.requests) == 1


async def test_transfer_5xx_is_retried_then_fails(server: ProviderServer) -> None:
    server.script(Reply(500), Reply(500), Reply(500))
    cc = _control(server)
    with pytest.raises(CallControlError, match="3 attempts"):
        await cc.transfer("PJSIP/agent")
    await cc.aclose()
    assert len(server.requests) == 3


async def test_transfer_without_the_caller_channel_is_refused(server: ProviderServer) -> None:
    cc = _control(server, caller=None)
    with pytest.raises(ConfigurationError, match="CALLPIPE_CALLER_CHANNEL"):
        await cc.transfer("PJSIP/agent")
    await cc.aclose()
    assert server.requests == []


async def test_dtmf_is_played_to_the_caller_channel(server: ProviderServer) -> None:
    server.script(Reply(204))
    cc = _control(server)
    assert await cc.send_dtmf("12#") is True
    await cc.aclose()
    req = server.requests[0]
    path, query = _split(req.path)
    assert (req.method, path) == ("POST", f"/ari/channels/{CALLER}/dtmf")
    assert query == {"dtmf": ["12#"], "between": ["100"], "duration": ["100"]}
    assert req.headers["authorization"] == BASIC


async def test_dtmf_outside_stasis_falls_back_in_band_once(server: ProviderServer) -> None:
    server.script(Reply(409, {"message": "Channel not in Stasis application"}))
    cc = _control(server)
    assert await cc.send_dtmf("1") is False
    assert await cc.send_dtmf("2") is False  # remembered: no second request
    await cc.aclose()
    assert len(server.requests) == 1


async def test_dtmf_without_caller_is_in_band_and_other_4xx_raise(server: ProviderServer) -> None:
    cc = _control(server, caller=None)
    assert await cc.send_dtmf("5") is False
    await cc.aclose()
    assert server.requests == []
    server.script(Reply(404, {"message": "Channel not found"}))
    cc = _control(server)
    with pytest.raises(CallControlError, match="404"):
        await cc.send_dtmf("5")
    with pytest.raises(ConfigurationError):
        await cc.send_dtmf("5; rm")
    await cc.aclose()
    assert len(server.requests) == 1


def test_channel_ids_and_endpoints_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        AsteriskAriCallControl(
            base_url="http://pbx/ari", channel_id="../x", username="u", password="p"
        )
    cc = AsteriskAriCallControl(
        base_url="http://pbx/ari",
        channel_id=WS_CHANNEL,
        username="u",
        password="p",
        caller_channel_id="bad id/../",
    )
    assert cc.caller_channel_id is None  # an unusable variable is ignored, not trusted
    assert redirect_endpoint("sip:agent@pbx.example.com") == "PJSIP/sip:agent@pbx.example.com"
    assert redirect_endpoint("IAX2/branch-office") == "IAX2/branch-office"
    with pytest.raises(ConfigurationError):
        redirect_endpoint("agent desk")
