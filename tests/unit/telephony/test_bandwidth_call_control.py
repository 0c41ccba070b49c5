"""Bandwidth call control and dialing against a local HTTP server, checked against Bandwidth's SDK.

The Voice API v2 (``/accounts/{accountId}/calls[/{callId}]``) with a bearer token from the OAuth
2.0 client-credentials grant; ``bandwidth-sdk`` (a dev dependency) sends the same operations to
the same recording server, and its request models must accept our bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.providers import registry
from callpipe.telephony.bandwidth import (
    BandwidthCallControl,
    BandwidthOAuth,
    _TokenCache,
    transfer_bxml,
)
from callpipe.telephony.base import RetryPolicy
from callpipe.telephony.dial import ProviderAccount, dial

from ._server import ProviderServer, Reply, Request, basic

FAST = RetryPolicy(timeout=3.0, retries=2, backoff=0.01)
ACCOUNT = "55555555"
CALL = "c-95ac8d6e-1a31c52e-b38f-4198-93c1-51633ec68f8d"
TOKEN_PATH = "/api/v1/oauth2/token"


def token(value: str = "tok-1", expires_in: int = 3600) -> Reply:
    return Reply(200, {"access_token": value, "token_type": "Bearer", "expires_in": expires_in})


def _control(server: ProviderServer, **overrides: Any) -> BandwidthCallControl:
    args: dict[str, Any] = {
        "account_id": ACCOUNT,
        "call_id": CALL,
        "client_id": "client-1",
        "client_secret": "secret-1",
        "base_url": server.url,
        "token_url": server.url + TOKEN_PATH,
        "retry": FAST,
    }
    args.update(overrides)
    return BandwidthCallControl(**args)


def _is_token_request(req: Request) -> None:
    assert (req.method, req.path) == ("POST", TOKEN_PATH)
    assert req.headers["authorization"] == basic("client-1", "secret-1")
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.body == b"grant_type=client_credentials"


async def test_hang_up_fetches_a_token_then_completes_the_call(server: ProviderServer) -> None:
    server.script(token(), Reply(200))
    cc = _control(server)
    assert await cc.hang_up() is True
    assert await cc.hang_up() is True  # idempotent: one request
    await cc.aclose()
    token_req, hang_up = server.requests
    _is_token_request(token_req)
    assert (hang_up.method, hang_up.path) == ("POST", f"/accounts/{ACCOUNT}/calls/{CALL}")
    assert hang_up.headers["authorization"] == "Bearer tok-1"
    assert hang_up.json() == {"state": "completed"}


async def test_the_token_is_shared_until_it_expires(server: ProviderServer) -> None:
    server.script(token("tok-a"), Reply(200), Reply(200))
    for call in (CALL, "c-2"):
        cc = _control(server, call_id=call)
        assert await cc.hang_up() is True
        await cc.aclose()
    paths = [r.path for r in server.requests]
    calls = f"/accounts/{ACCOUNT}/calls"
    assert paths == [TOKEN_PATH, f"{calls}/{CALL}", f"{calls}/c-2"]
    assert server.requests[2].headers["authorization"] == "Bearer tok-a"


async def test_a_refused_cached_token_is_replaced_once(server: ProviderServer) -> None:
    cache = _TokenCache()
    now = [0.0]
    auth = BandwidthOAuth(
        "client-1", "secret-1", token_url=server.url + TOKEN_PATH, clock=lambda: now[0], cache=cache
    )
    server.script(token("old"), Reply(200), Reply(401, {"type": "authentication-error"}))
    server.script(token("new"), Reply(200))
    import httpx

    async with httpx.AsyncClient(base_url=server.url, auth=auth) as client:
        assert (await client.post("/x")).status_code == 200
        assert (await client.post("/y")).status_code == 200  # 401 with "old", then "new"
    headers = [r.headers.get("authorization") for r in server.requests]
    assert headers[1:3] == ["Bearer old", "Bearer old"]
    assert headers[4] == "Bearer new"
    # Expiry: one minute before Bandwidth says, a new token is fetched.
    server.requests.clear()
    server.script(token("newer", expires_in=120), Reply(200))
    now[0] = 3600.0
    async with httpx.AsyncClient(base_url=server.url, auth=auth) as client:
        assert (await client.post("/z")).status_code == 200
    assert [r.path for r in server.requests] == [TOKEN_PATH, "/z"]


@pytest.mark.parametrize("status", [404, 409])
async def test_a_call_already_over_is_success(server: ProviderServer, status: int) -> None:
    server.script(token(), Reply(status, {"type": "validation", "description": "not found"}))
    cc = _control(server)
    assert await cc.hang_up() is True
    await cc.aclose()


async def test_refused_credentials_are_one_warning_not_a_traceback(
    server: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Reply(401, {"error": "invalid_client"}))
    cc = _control(server, client_id="wrong")
    with caplog.at_level(logging.DEBUG, logger="callpipe.telephony"):
        assert await cc.hang_up() is False
    await cc.aclose()
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "OAuth token refused: HTTP 401" in warning.getMessage()
    assert warning.exc_info is None and CALL not in warning.getMessage()
    assert len(server.requests) == 1  # the API itself was never called


async def test_token_endpoint_5xx_is_retried(server: ProviderServer) -> None:
    server.script(Reply(503), token(), Reply(200))
    cc = _control(server)
    assert await cc.hang_up() is True
    await cc.aclose()
    assert [r.path for r in server.requests][-1] == f"/accounts/{ACCOUNT}/calls/{CALL}"


async def test_token_answer_without_a_token_is_a_call_control_error(server: ProviderServer) -> None:
    server.script(Reply(200, {"token_type": "Bearer"}))
    cc = _control(server)
    with pytest.raises(CallControlError, match="without access_token"):
        await cc.transfer("+15551234567")
    await cc.aclose()


async def test_transfer_replaces_the_bxml(server: ProviderServer) -> None:
    server.script(token(), Reply(204), Reply(204))
    cc = _control(server)
    await cc.transfer("+1 555 123 4567")
    await cc.transfer("sip:agent@example.com")
    await cc.aclose()
    number, sip = server.requests[1:]
    assert (number.method, number.path) == ("PUT", f"/accounts/{ACCOUNT}/calls/{CALL}/bxml")
    assert number.headers["content-type"].startswith("application/xml")
    doc = ET.fromstring(number.body)
    assert [c.tag for c in doc] == ["StopStream", "Transfer"]
    assert doc.find("StopStream").get("name") == "callpipe"  # type: ignore[union-attr]
    assert doc.findtext("Transfer/PhoneNumber") == "+15551234567"
    assert ET.fromstring(sip.body).findtext("Transfer/SipUri") == "sip:agent@example.com"
    assert await cc.send_dtmf("12") is False  # in-band tones: new BXML would end the stream


def test_transfer_bxml_is_bandwidths() -> None:
    """The document parses as the SDK's verbs produce it (same tags and attributes)."""
    from bandwidth.models.bxml import PhoneNumber, Response, StopStream, Transfer

    sdk = Response([StopStream(name="callpipe"), Transfer([PhoneNumber("+15551234567")])])
    assert _tree(transfer_bxml("+15551234567")) == _tree(sdk.to_bxml())
    with pytest.raises(ConfigurationError):
        transfer_bxml("not a number")


def _tree(xml: str) -> Any:
    def walk(e: ET.Element) -> Any:
        return (e.tag, dict(e.attrib), (e.text or "").strip(), [walk(c) for c in e])

    return walk(ET.fromstring(xml.encode()))


@pytest.mark.parametrize("bad", ["c/../x", "c?x", "", "c 1"])
def test_unsafe_ids_are_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        BandwidthCallControl(account_id=ACCOUNT, call_id=bad, client_id="c", client_secret="s")
    with pytest.raises(ConfigurationError):
        BandwidthCallControl(account_id=bad, call_id=CALL, client_id="c", client_secret="s")


def test_no_credentials_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="client_id"):
        BandwidthCallControl(account_id=ACCOUNT, call_id=CALL)


async def test_legacy_api_user_basic_auth(server: ProviderServer) -> None:
    server.script(Reply(200))
    cc = _control(server, client_id=None, client_secret=None, username="api", password="pw")
    assert await cc.hang_up() is True
    await cc.aclose()
    (req,) = server.requests
    assert req.headers["authorization"] == basic("api", "pw")


# ---------------------------------------------------------------------------- the SDK


def _sdk_calls(server: ProviderServer, **config: Any) -> Any:
    from bandwidth import ApiClient, Configuration
    from bandwidth.api.calls_api import CallsApi

    configuration = Configuration(
        host=server.url, ignore_operation_servers=True, retries=0, **config
    )
    return CallsApi(ApiClient(configuration))


def _shape(req: Request) -> tuple[str, str, str | None]:
    return req.method, req.path, req.headers.get("authorization")


async def test_hang_up_is_the_sdks_update_call(server: ProviderServer) -> None:
    from bandwidth.models.update_call import UpdateCall

    server.script(token(), Reply(200))
    cc = _control(server)
    assert await cc.hang_up() is True
    await cc.aclose()
    ours = list(server.requests)
    server.requests.clear()
    server.script(token(), Reply(200))
    calls = _sdk_calls(
        server,
        client_id="client-1",
        client_secret="secret-1",
        access_token_url=server.url + TOKEN_PATH,
    )
    await asyncio.to_thread(calls.update_call, ACCOUNT, CALL, UpdateCall(state="completed"))
    sdk = list(server.requests)
    assert [_shape(r) for r in ours] == [_shape(r) for r in sdk]
    assert ours[0].body == sdk[0].body == b"grant_type=client_credentials"
    assert ours[1].json() == {"state": "completed"}
    # The SDK also sends its model's defaults (redirectMethod...): ours is the state alone.
    assert sdk[1].json()["state"] == "completed"


async def test_transfer_is_the_sdks_update_call_bxml(server: ProviderServer) -> None:
    server.script(Reply(204))
    cc = _control(server, client_id=None, client_secret=None, username="api", password="pw")
    await cc.transfer("+15551234567")
    await cc.aclose()
    ours = server.requests[0]
    server.requests.clear()
    server.script(Reply(204))
    calls = _sdk_calls(server, username="api", password="pw")
    await asyncio.to_thread(calls.update_call_bxml, ACCOUNT, CALL, ours.body.decode())
    sdk = server.requests[0]
    assert (ours.method, ours.path, ours.headers["authorization"]) == (
        sdk.method,
        sdk.path,
        sdk.headers["authorization"],
    )
    assert sdk.headers["content-type"].startswith("application/xml")
    assert ours.body == sdk.body


# ---------------------------------------------------------------------------- dialing

DIAL_ENV = {
    "BANDWIDTH_ACCOUNT_ID": ACCOUNT,
    "BANDWIDTH_APPLICATION_ID": "7fc9698a-b04a-468b-9e8f-91238c0d0086",
    "BANDWIDTH_CLIENT_ID": "client-1",
    "BANDWIDTH_CLIENT_SECRET": "secret-1",
    "BANDWIDTH_CALLBACK_AUTH": "cb-user:cb-pass",
}
CREATED = {
    "applicationId": DIAL_ENV["BANDWIDTH_APPLICATION_ID"],
    "accountId": ACCOUNT,
    "callId": CALL,
    "to": "+15553334444",
    "from": "+15551112222",
    "callUrl": f"https://voice.bandwidth.com/api/v2/accounts/{ACCOUNT}/calls/{CALL}",
    "answerMethod": "POST",
    "answerUrl": "https://bot.example/",
    "disconnectMethod": "POST",
}


async def test_dial_creates_the_call_as_the_sdk_defines_it(server: ProviderServer) -> None:
    from bandwidth.models.create_call import CreateCall

    env = {**DIAL_ENV, "BANDWIDTH_OAUTH_URL": server.url + TOKEN_PATH}
    server.script(token(), Reply(201, CREATED))
    handle = await dial(
        "+15553334444",
        "+15551112222",
        provider="bandwidth",
        answer_url="https://bot.example/",
        status_url="https://bot.example/calls/status",
        machine_detection="detect_end",
        account=ProviderAccount.from_env("bandwidth", env),
        base_url=server.url,
    )
    assert (handle.provider, handle.call_id) == ("bandwidth", CALL)
    token_req, create = server.requests
    _is_token_request(token_req)
    assert (create.method, create.path) == ("POST", f"/accounts/{ACCOUNT}/calls")
    assert create.headers["authorization"] == "Bearer tok-1"
    body = create.json()
    assert body == {
        "to": "+15553334444",
        "from": "+15551112222",
        "applicationId": DIAL_ENV["BANDWIDTH_APPLICATION_ID"],
        "answerUrl": "https://bot.example/",
        "answerMethod": "POST",
        "callTimeout": 30,
        "disconnectUrl": "https://bot.example/calls/status",
        "disconnectMethod": "POST",
        "username": "cb-user",
        "password": "cb-pass",
        "machineDetection": {
            "mode": "async",
            "delayResult": True,
            "callbackUrl": "https://bot.example/calls/status",
            "callbackMethod": "POST",
            "username": "cb-user",
            "password": "cb-pass",
        },
    }
    # Bandwidth's own request model takes every field as we send it.
    model = CreateCall.from_dict(body)
    assert model is not None
    echoed = json.loads(model.to_json())
    assert {k: echoed[k] for k in body if k != "machineDetection"} == {
        k: v for k, v in body.items() if k != "machineDetection"
    }
    assert {k: echoed["machineDetection"][k] for k in body["machineDetection"]} == body[
        "machineDetection"
    ]
    # ... and the SDK sends the same method and path.
    server.requests.clear()
    server.script(token(), Reply(201, CREATED))
    calls = _sdk_calls(
        server,
        client_id="client-1",
        client_secret="secret-1",
        access_token_url=server.url + TOKEN_PATH,
    )
    await asyncio.to_thread(calls.create_call, ACCOUNT, model)
    assert [_shape(r) for r in server.requests] == [_shape(token_req), _shape(create)]


async def test_dial_needs_credentials_and_the_application() -> None:
    env = {k: v for k, v in DIAL_ENV.items() if "CLIENT" not in k}
    with pytest.raises(ConfigurationError, match="BANDWIDTH_CLIENT_ID"):
        await dial(
            "+1555",
            "+1666",
            provider="bandwidth",
            answer_url="https://bot.example/",
            account=ProviderAccount.from_env("bandwidth", env),
        )
    env = {k: v for k, v in DIAL_ENV.items() if "APPLICATION" not in k}
    with pytest.raises(ConfigurationError, match="APPLICATION_ID"):
        await dial(
            "+1555",
            "+1666",
            provider="bandwidth",
            answer_url="https://bot.example/",
            account=ProviderAccount.from_env("bandwidth", env),
        )


def test_callback_words() -> None:
    dialer = registry.require("bandwidth").dialer
    assert dialer is not None
    disconnect = {"eventType": "disconnect", "callId": CALL}
    assert dialer.callback_call_id(disconnect) == CALL
    for cause, status in [
        ("hangup", "completed"),
        ("busy", "busy"),
        ("timeout", "no-answer"),
        ("cancel", "canceled"),
        ("rejected", "failed"),
        ("callback-error", "failed"),
        ("something-new", "failed"),
    ]:
        assert dialer.callback_status({**disconnect, "cause": cause}) == status
    assert dialer.callback_status({"eventType": "answer"}) == "answered"
    assert dialer.callback_status({"eventType": "machineDetectionComplete"}) is None
    amd = {"eventType": "machineDetectionComplete", "callId": CALL}
    assert dialer.callback_amd({**amd, "machineDetectionResult.value": "human"}) == "human"
    assert dialer.callback_amd({**amd, "machineDetectionResult": "answering-machine"}) == (
        "machine_start"
    )
    assert dialer.callback_amd({**amd, "machineDetectionResult.value": "silence"}) == "unknown"
    assert dialer.callback_amd(disconnect) is None
    assert dialer.answer_call_id(CREATED) == CALL and dialer.answer_call_id([]) == ""
