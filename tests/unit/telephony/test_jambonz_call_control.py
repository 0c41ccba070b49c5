"""jambonz call control against a local HTTP server: the REST API's call update."""

from __future__ import annotations

import pytest

from callpipe.errors import CallControlError
from callpipe.telephony.base import RetryPolicy
from callpipe.telephony.jambonz import JambonzCallControl

from ._server import ProviderServer, Reply

FAST = RetryPolicy(timeout=3.0, retries=2, backoff=0.01)
ACCOUNT = "9351f46a-678c-43f5-b8a6-d4eb58d131af"
CALL = "0d5f3c4e-7a5b-4f0e-9a43-2b1de7d2c7a1"


def _control(server: ProviderServer) -> JambonzCallControl:
    return JambonzCallControl(
        account_sid=ACCOUNT, call_sid=CALL, api_key="key-1", base_url=server.url, retry=FAST
    )


async def test_hang_up_request_shape_and_idempotence(server: ProviderServer) -> None:
    server.script(Reply(204))
    cc = _control(server)
    assert await cc.hang_up() is True
    assert await cc.hang_up() is True
    await cc.aclose()
    assert len(server.requests) == 1
    req = server.requests[0]
    assert (req.method, req.path) == ("PUT", f"/v1/Accounts/{ACCOUNT}/Calls/{CALL}")
    assert req.headers["authorization"] == "Bearer key-1"
    assert req.json() == {"call_status": "completed"}


async def test_gone_call_is_success_and_5xx_is_retried(server: ProviderServer) -> None:
    server.script(Reply(503), Reply(404))
    cc = _control(server)
    assert await cc.hang_up() is True
    await cc.aclose()
    assert len(server.requests) == 2


async def test_no_transfer_and_no_api_dtmf(server: ProviderServer) -> None:
    cc = _control(server)
    with pytest.raises(CallControlError):
        await cc.transfer("+15551234567")
    assert await cc.send_dtmf("12") is False
    await cc.aclose()
    assert server.requests == []
