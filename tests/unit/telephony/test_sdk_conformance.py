"""Our REST requests are the official SDKs' requests: same method, path, auth and body.

Each provider's SDK (dev dependencies) and our client send the same operation to one local
recording fake; the recorded requests must match. This checks the fakes' contract (what the
other tests assert) against the provider's own code, not against our reading of the docs.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from callpipe.telephony.plivo import PlivoCallControl
from callpipe.telephony.telnyx import TelnyxCallControl
from callpipe.telephony.vonage import VonageCallControl

from ._keys import rsa_private_pem
from ._server import ProviderServer, Reply, Request
from ._warm_transfer import telnyx_transfer, twilio_transfer

OK = {"data": {"result": "ok"}}
AUTH_ID = "MA" + "Z" * 18  # the SDK checks the shape of a main-account id


def shape(r: Request) -> tuple[str, str, Any]:
    return r.method, r.path.split("?")[0], r.json() if r.body else None


def redirect_https(session: Any, url: str) -> None:
    """Send a ``requests`` session's https:// calls to the local fake (plain HTTP)."""
    from requests.adapters import HTTPAdapter

    class Redirect(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            rest = request.url.split("://", 1)[1]
            request.url = url + "/" + rest.split("/", 1)[1]
            return super().send(request, *args, **kwargs)

    session.mount("https://", Redirect())


# ---------------------------------------------------------------------------- Telnyx


async def test_telnyx_warm_transfer_matches_the_sdk(server: ProviderServer) -> None:
    telnyx = pytest.importorskip("telnyx")
    server.script(
        Reply(200, {"data": {"call_control_id": "agent-1", "call_leg_id": "l"}}),
        *[Reply(200, OK)] * 3,
    )

    await telnyx_transfer(server, "Ada wants Friday.")
    ours = list(server.requests)
    cmd = [r.json().get("command_id") for r in ours]
    assert all(isinstance(c, str) and uuid.UUID(c) for c in cmd[1:])

    server.requests.clear()
    server.script(Reply(200, {"data": {"call_control_id": "agent-1"}}), *[Reply(200, OK)] * 3)
    client = telnyx.AsyncTelnyx(api_key="KEY", base_url=server.url + "/v2", max_retries=0)
    try:
        await client.calls.dial(connection_id="conn-1", to="+15550001111", from_="+15557654321")
        await client.calls.actions.speak(
            "agent-1",
            payload="Ada wants Friday.",
            voice="female",
            language="en-US",
            command_id=cmd[1],
        )
        await client.calls.actions.bridge(
            "caller-1", call_control_id_to_bridge_with="agent-1", command_id=cmd[2]
        )
        await client.calls.actions.stop_streaming("caller-1", command_id=cmd[3])
    finally:
        await client.close()
    sdk = list(server.requests)
    assert [shape(r) for r in ours] == [shape(r) for r in sdk]
    assert {r.headers["authorization"] for r in ours + sdk} == {"Bearer KEY"}


async def test_telnyx_send_dtmf_and_hangup_match_the_sdk(server: ProviderServer) -> None:
    telnyx = pytest.importorskip("telnyx")
    server.script(*[Reply(200, OK)] * 4)
    cc = TelnyxCallControl(call_control_id="v3:cc-1", api_key="KEY", base_url=server.url)
    assert await cc.send_dtmf("12*#") is True
    assert await cc.hang_up() is True
    await cc.aclose()
    ids = [r.json()["command_id"] for r in server.requests]
    client = telnyx.AsyncTelnyx(api_key="KEY", base_url=server.url + "/v2", max_retries=0)
    try:
        await client.calls.actions.send_dtmf(
            "v3:cc-1", digits="12*#", duration_millis=250, command_id=ids[0]
        )
        await client.calls.actions.hangup("v3:cc-1", command_id=ids[1])
    finally:
        await client.close()
    ours, sdk = server.requests[:2], server.requests[2:]
    assert [shape(r) for r in ours] == [shape(r) for r in sdk]
    assert ours[0].path == "/v2/calls/v3:cc-1/actions/send_dtmf"
    assert {r.headers["authorization"] for r in ours + sdk} == {"Bearer KEY"}


# ---------------------------------------------------------------------------- Plivo


async def test_plivo_send_digits_matches_the_sdk(server: ProviderServer) -> None:
    plivo = pytest.importorskip("plivo")
    reply = {"api_id": "x", "message": "digits sent"}
    server.script(Reply(202, reply), Reply(202, reply))
    cc = PlivoCallControl(
        auth_id=AUTH_ID, auth_token="tok", call_uuid="uuid-1", base_url=server.url
    )
    assert await cc.send_dtmf("1w2#") is True
    await cc.aclose()
    client = plivo.RestClient(AUTH_ID, "tok")
    redirect_https(client.session, server.url)
    client.calls.send_digits("uuid-1", "1w2#", leg="aleg")
    ours, sdk = server.requests
    path = f"/v1/Account/{AUTH_ID}/Call/uuid-1/DTMF/"
    assert shape(ours) == ("POST", path, {"digits": "1w2#", "leg": "aleg"})
    # The SDK also echoes the path's call_uuid in the body (its locals() to params); the
    # documented body is digits and leg, which is what both send.
    method, sdk_path, body = shape(sdk)
    assert (method, sdk_path) == ("POST", path) and body.pop("call_uuid") == "uuid-1"
    assert body == ours.json()
    assert ours.headers["authorization"] == sdk.headers["authorization"]
    assert ours.headers["authorization"] == httpx.BasicAuth(AUTH_ID, "tok")._auth_header


# ---------------------------------------------------------------------------- Vonage


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    return rsa_private_pem()


def vonage_sdk(server: ProviderServer, pem: str) -> Any:
    vonage = pytest.importorskip("vonage")
    client = vonage.Vonage(vonage.Auth(application_id="app-1", private_key=pem))
    redirect_https(client.http_client._session, server.url)
    return client


async def test_vonage_dtmf_hangup_and_transfer_match_the_sdk(
    server: ProviderServer, rsa_pem: str
) -> None:
    jwt = pytest.importorskip("jwt")
    voice = pytest.importorskip("vonage_voice")
    from callpipe.providers.vonage.jwt import VonageJwt

    cc = VonageCallControl(
        call_uuid="leg-1", bearer=VonageJwt("app-1", rsa_pem), base_url=server.url
    )
    server.script(*[Reply(200, {"uuid": "leg-1", "message": "ok"})] * 6)
    assert await cc.send_dtmf("12w#") is True
    await cc.transfer("+15550001111")
    assert await cc.hang_up() is True
    await cc.aclose()

    client = vonage_sdk(server, rsa_pem)
    client.voice.play_dtmf_into_call("leg-1", "12p#")
    client.voice.transfer_call_ncco(
        "leg-1",
        [
            voice.Connect(
                endpoint=[voice.PhoneEndpoint(number="15550001111")], randomFromNumber=True
            )
        ],
    )
    client.voice.hangup("leg-1")

    ours, sdk = server.requests[:3], server.requests[3:]
    assert [shape(r) for r in ours] == [shape(r) for r in sdk]
    assert shape(ours[0]) == ("PUT", "/v1/calls/leg-1/dtmf", {"digits": "12p#"})
    # Both send an RS256 application JWT for the same application (fresh per request).
    key = __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"])
    public = key.load_pem_private_key(rsa_pem.encode(), None).public_key()
    for r in ours + sdk:
        scheme, token = r.headers["authorization"].split(" ", 1)
        claims = jwt.decode(token, public, algorithms=["RS256"])
        assert scheme == "Bearer" and claims["application_id"] == "app-1"
    tokens = {r.headers["authorization"] for r in ours}
    assert len(tokens) == 3  # never a replayed token


async def test_vonage_keys_a_to_d_fall_back_to_in_band(server: ProviderServer) -> None:
    cc = VonageCallControl(call_uuid="leg-1", bearer=lambda: "t", base_url=server.url)
    assert await cc.send_dtmf("1A") is False
    await cc.aclose()
    assert server.requests == []


async def test_vonage_transfer_with_a_caller_id_of_yours(server: ProviderServer) -> None:
    cc = VonageCallControl(
        call_uuid="leg-1", bearer=lambda: "t", transfer_from="+15557654321", base_url=server.url
    )
    await cc.transfer("sip:agent@pbx.example")
    await cc.aclose()
    (r,) = server.requests
    assert r.headers["authorization"] == "Bearer t"
    assert shape(r) == (
        "PUT",
        "/v1/calls/leg-1",
        {
            "action": "transfer",
            "destination": {
                "type": "ncco",
                "ncco": [
                    {
                        "action": "connect",
                        "endpoint": [{"type": "sip", "uri": "sip:agent@pbx.example"}],
                        "from": "15557654321",
                    }
                ],
            },
        },
    )


# ---------------------------------------------------------------------------- Twilio


async def test_twilio_warm_transfer_matches_the_sdk(server: ProviderServer) -> None:
    """Dial with TwiML, fetch, move the caller, and (caller gone) end the agent's call."""

    pytest.importorskip("twilio")
    from twilio.http import HttpClient
    from twilio.http.response import Response
    from twilio.rest import Client

    from callpipe.errors import CallControlError

    server.script(
        Reply(201, {"sid": "CAagent", "status": "queued"}),
        Reply(200, {"sid": "CAagent", "status": "in-progress"}),
        Reply(400, {"code": 21220, "message": "Call is not in-progress"}),
        Reply(200, {"sid": "CAagent", "status": "completed"}),
    )
    with pytest.raises(CallControlError):
        await twilio_transfer(server, "Ada wants Friday.", room="room-1", ring_timeout=20)
    ours = [(r.method, r.path, r.form()) for r in server.requests]
    assert {r.headers["authorization"] for r in server.requests} == {
        httpx.BasicAuth("AC1", "tok")._auth_header
    }

    seen: list[tuple[str, str, dict[str, str], tuple[str, str] | None]] = []

    class Recorder(HttpClient):
        def request(self, method: str, uri: str, *args: Any, **kwargs: Any) -> Response:
            data = {k: str(v) for k, v in (kwargs.get("data") or {}).items()}
            seen.append((method, "/" + uri.split("/", 3)[3], data, kwargs.get("auth")))
            return Response(200, '{"sid": "CAagent", "status": "in-progress"}')

    client = Client("AC1", "tok", http_client=Recorder(logger=None, is_async=False))
    client.calls.create(
        to="+15550001111", from_="+15557654321", twiml=ours[0][2]["Twiml"], timeout=20
    )
    client.calls("CAagent").fetch()
    client.calls("CAcaller").update(twiml=ours[2][2]["Twiml"])
    client.calls("CAagent").update(status="completed")
    assert [(m, p, d) for m, p, d, _ in seen] == ours
    assert {a for *_, a in seen} == {("AC1", "tok")}
