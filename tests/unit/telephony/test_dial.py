"""dial() against local fakes of each provider's REST API: method, path, auth and body."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, parse_qsl

import pytest

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.providers import registry  # registers each provider's dialer by name
from callpipe.telephony.dial import ProviderAccount, dial
from callpipe.telephony.dial.types import call_id_of, dialer_for, normalize_amd, status_of

from ._keys import rsa_private_pem
from ._server import ProviderServer, Reply, basic


def account(provider: str, **values: str) -> ProviderAccount:
    env = {f"{provider.upper()}_{k}": v for k, v in values.items()}
    return ProviderAccount.from_env(provider, env)


async def test_twilio_dial_with_answer_url_and_async_amd(server: ProviderServer) -> None:
    server.script(Reply(201, {"sid": "CA123", "status": "queued"}))
    handle = await dial(
        "+15551234567",
        "+15557654321",
        provider="twilio",
        answer_url="https://bot.example/",
        status_url="https://bot.example/calls/status",
        machine_detection="detect_end",
        metadata={"name": "Ada"},
        account=account("twilio", ACCOUNT_SID="AC1", AUTH_TOKEN="tok"),
        base_url=server.url,
    )
    assert (handle.provider, handle.call_id, handle.status) == ("twilio", "CA123", "initiated")
    assert handle.metadata == {"name": "Ada"}
    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/2010-04-01/Accounts/AC1/Calls.json")
    assert req.headers["authorization"] == basic("AC1", "tok")
    form = parse_qs(req.body.decode())
    assert form["To"] == ["+15551234567"] and form["From"] == ["+15557654321"]
    assert form["Url"] == ["https://bot.example/"] and form["Method"] == ["POST"]
    assert form["MachineDetection"] == ["DetectMessageEnd"] and form["AsyncAmd"] == ["true"]
    assert form["AsyncAmdStatusCallback"] == ["https://bot.example/calls/status"]
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert "name" not in req.body.decode()  # metadata stays local


async def test_twilio_inline_twiml_and_api_key(server: ProviderServer) -> None:
    server.script(Reply(201, {"sid": "CA9"}))
    await dial(
        "+15551234567",
        "+15557654321",
        provider="twilio",
        twiml="<Response><Say>hi</Say></Response>",
        account=account("twilio", ACCOUNT_SID="AC1", API_KEY_SID="SK1", API_KEY_SECRET="s"),
        base_url=server.url,
    )
    req = server.requests[0]
    assert req.headers["authorization"] == basic("SK1", "s")
    form = dict(parse_qsl(req.body.decode()))
    assert form["Twiml"] == "<Response><Say>hi</Say></Response>" and "Url" not in form
    assert "MachineDetection" not in form and "StatusCallback" not in form


async def test_telnyx_texml_dial(server: ProviderServer) -> None:
    server.script(Reply(200, {"from": "+1", "to": "+2", "status": "queued", "call_sid": "v3:x"}))
    handle = await dial(
        "+15551234567",
        "+15557654321",
        provider="telnyx",
        answer_url="https://bot.example/",
        status_url="https://bot.example/calls/status",
        machine_detection="enable",
        account=account("telnyx", API_KEY="KEY1", ACCOUNT_SID="acc", APPLICATION_SID="app"),
        base_url=server.url,
    )
    assert handle.call_id == "v3:x"
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/v2/texml/Accounts/acc/Calls")
    assert req.headers["authorization"] == "Bearer KEY1"
    body = req.json()
    assert body["ApplicationSid"] == "app" and body["Url"] == "https://bot.example/"
    assert body["To"] == "+15551234567" and body["MachineDetection"] == "Enable"
    assert body["AsyncAmd"] == "true"


async def test_plivo_dial(server: ProviderServer) -> None:
    server.script(Reply(201, {"api_id": "a", "message": "call fired", "request_uuid": "r-1"}))
    handle = await dial(
        "+15551234567",
        "+15557654321",
        provider="plivo",
        answer_url="https://bot.example/",
        status_url="https://bot.example/calls/status",
        machine_detection="enable",
        account=account("plivo", AUTH_ID="MA1", AUTH_TOKEN="pt"),
        base_url=server.url,
    )
    assert handle.call_id == "r-1"
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/Account/MA1/Call/")
    assert req.headers["authorization"] == basic("MA1", "pt")
    body = req.json()
    assert body["to"] == "15551234567" and body["from"] == "15557654321"
    assert body["answer_url"] == "https://bot.example/" and body["answer_method"] == "POST"
    assert body["hangup_url"] == body["ring_url"] == "https://bot.example/calls/status"
    assert body["machine_detection"] == "true"


async def test_vonage_dial_signs_a_jwt(server: ProviderServer) -> None:
    jwt = pytest.importorskip("jwt")
    from cryptography.hazmat.primitives import serialization

    pem = rsa_private_pem()
    server.script(Reply(201, {"uuid": "u-1", "status": "started", "conversation_uuid": "c"}))
    handle = await dial(
        "+15551234567",
        "+15557654321",
        provider="vonage",
        answer_url="https://bot.example/",
        status_url="https://bot.example/calls/status",
        machine_detection="detect_end",
        account=account("vonage", APPLICATION_ID="app-1", PRIVATE_KEY=pem),
        base_url=server.url,
    )
    assert handle.call_id == "u-1"
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/calls")
    scheme, token = req.headers["authorization"].split(" ")
    public = serialization.load_pem_private_key(pem.encode(), None).public_key()
    claims = jwt.decode(token, public, algorithms=["RS256"])
    assert scheme == "Bearer" and claims["application_id"] == "app-1" and claims["jti"]
    body = req.json()
    assert body["to"] == [{"type": "phone", "number": "15551234567"}]
    assert body["answer_url"] == ["https://bot.example/"]
    assert body["event_url"] == ["https://bot.example/calls/status"]
    assert body["advanced_machine_detection"]["mode"] == "detect_beep"


async def test_exotel_dial(server: ProviderServer) -> None:
    server.script(Reply(200, {"Call": {"Sid": "ex1", "Status": "in-progress"}}))
    handle = await dial(
        "+919900000001",
        "08012345678",
        provider="exotel",
        answer_url="http://my.exotel.com/sid1/exoml/start_voice/42",
        status_url="https://bot.example/calls/status",
        account=account("exotel", API_KEY="k", API_TOKEN="t", ACCOUNT_SID="sid1"),
        base_url=server.url,
    )
    assert handle.call_id == "ex1"
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/Accounts/sid1/Calls/connect.json")
    assert req.headers["authorization"] == basic("k", "t")
    form = parse_qs(req.body.decode())
    assert form["From"] == ["+919900000001"] and form["CallerId"] == ["08012345678"]
    assert form["StatusCallbackEvents[1]"] == ["terminal"]


async def test_refused_dial_raises_and_is_not_retried(server: ProviderServer) -> None:
    server.script(Reply(500, {"message": "oops"}))
    with pytest.raises(CallControlError, match="HTTP 500"):
        await dial(
            "+15551234567",
            "+15557654321",
            provider="twilio",
            answer_url="https://bot.example/",
            account=account("twilio", ACCOUNT_SID="AC1", AUTH_TOKEN="tok"),
            base_url=server.url,
        )
    assert len(server.requests) == 1  # a 5xx after sending may have placed the call


async def test_missing_credentials_name_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="AUTH_TOKEN"):
        await dial(
            "+1555",
            "+1666",
            provider="plivo",
            answer_url="https://x/",
            account=account("plivo", AUTH_ID="MA1"),
        )


def test_callback_vocabulary() -> None:
    assert status_of("twilio", {"CallStatus": "in-progress"}) == "answered"
    assert status_of("plivo", {"CallStatus": "timeout"}) == "no-answer"
    assert status_of("vonage", {"status": "unanswered"}) == "no-answer"
    assert status_of("vonage", {"status": "machine"}) is None
    assert status_of("exotel", {"Status": "busy"}) == "busy"
    assert normalize_amd("twilio", {"AnsweredBy": "machine_end_beep"}) == "machine_end_beep"
    assert normalize_amd("twilio", {"AnsweredBy": "weird"}) == "unknown"
    assert normalize_amd("plivo", {"Machine": "true"}) == "machine_start"
    assert normalize_amd("vonage", {"status": "human"}) == "human"
    assert normalize_amd("vonage", {"sub_state": "beep_start"}) == "machine_end_beep"
    assert call_id_of("plivo", {"RequestUUID": "r", "CallUUID": "c"}) == "r"
    assert json.dumps(status_of("twilio", {})) == "null"


def test_each_dialing_provider_exposes_its_dialer_through_the_registry() -> None:
    names = [d.name for d in registry.dialers()]
    assert names == ["twilio", "telnyx", "plivo", "exotel", "vonage", "bandwidth"]
    for name in names:
        dialer = registry.require(name).dialer
        assert dialer is not None and dialer_for(name) is dialer
        assert dialer.host.startswith("https://")
    # Providers that cannot dial have none, and a name without a dialer is refused clearly.
    assert registry.require("jambonz").dialer is None and registry.dialer("jambonz") is None
    with pytest.raises(ConfigurationError, match="unknown dial provider 'jambonz'"):
        dialer_for("jambonz")
    # Only Exotel needs the dial to name its own call flow instead of the runner.
    hinted = [n for n in names if dialer_for(n).flow_url_hint is not None]
    assert hinted == ["exotel"]


async def test_provider_errors_are_reported_without_the_full_number(
    server: ProviderServer,
) -> None:
    server.script(Reply(400, {"code": 21211, "message": "Invalid 'To' Phone Number: +15551234567"}))
    with pytest.raises(CallControlError) as info:
        await dial(
            "+15551234567",
            "+15557654321",
            provider="twilio",
            answer_url="https://bot.example/",
            account=account("twilio", ACCOUNT_SID="AC1", AUTH_TOKEN="tok"),
            base_url=server.url,
        )
    assert "+15551234567" not in str(info.value) and "…4567" in str(info.value)
    assert "21211" in str(info.value)
