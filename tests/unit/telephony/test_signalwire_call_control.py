"""SignalWire call control against a local HTTP server: the LaML Calls resource of a project."""

from __future__ import annotations

import pytest

from callpipe.errors import ConfigurationError
from callpipe.serializers.signalwire import SignalWireFrameSerializer
from callpipe.telephony.base import RetryPolicy
from callpipe.telephony.signalwire import SignalWireCallControl, signalwire_api_root

from ._server import ProviderServer, Reply, basic

FAST = RetryPolicy(timeout=3.0, retries=2, backoff=0.01)
PROJECT = "6bfbbe86-a901-4197-8759-2a0de1fa319d"
CALL = "a97d4e8a-6047-4e2b-be48-fb96b33b5642"


def _control(server: ProviderServer) -> SignalWireCallControl:
    return SignalWireCallControl(
        project_id=PROJECT, call_sid=CALL, api_token="PT-tok", base_url=server.url, retry=FAST
    )


async def test_hang_up_request_shape_and_idempotence(server: ProviderServer) -> None:
    cc = _control(server)
    assert await cc.hang_up() is True
    assert await cc.hang_up() is True
    await cc.aclose()
    assert len(server.requests) == 1
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", f"/2010-04-01/Accounts/{PROJECT}/Calls/{CALL}.json")
    auth = basic(PROJECT, "PT-tok")
    assert req.headers["authorization"] == auth
    assert req.body == b"Status=completed"


async def test_already_ended_is_success(server: ProviderServer) -> None:
    server.script(Reply(404, {"code": 20404, "message": "not found"}))
    cc = _control(server)
    assert await cc.hang_up() is True
    await cc.aclose()


async def test_serializer_hangs_up_through_its_space(server: ProviderServer) -> None:
    serializer = SignalWireFrameSerializer(
        "stream-1", CALL, project_id=PROJECT, api_token="PT-tok", base_url=server.url
    )
    assert isinstance(serializer.call_control, SignalWireCallControl)
    assert await serializer.call_control.hang_up() is True
    await serializer.call_control.aclose()
    assert server.requests[0].path.endswith(f"/Accounts/{PROJECT}/Calls/{CALL}.json")


@pytest.mark.parametrize(
    "space", ["example", "example.signalwire.com", "https://example.signalwire.com/"]
)
def test_space_host(space: str) -> None:
    assert signalwire_api_root(space) == "https://example.signalwire.com/api/laml"


@pytest.mark.parametrize("space", ["", "exa mple", "evil.com/x", "a..b"])
def test_bad_space_is_a_configuration_error(space: str) -> None:
    with pytest.raises(ConfigurationError):
        signalwire_api_root(space)
