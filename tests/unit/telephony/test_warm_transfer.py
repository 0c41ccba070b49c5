"""Warm transfer against the REST fakes: the exact sequence of requests per provider."""

from __future__ import annotations

import logging

import pytest

from ._server import ProviderServer, Reply
from ._warm_transfer import telnyx_transfer, twilio_transfer


async def test_twilio_dials_briefs_then_moves_the_caller(server: ProviderServer) -> None:
    server.script(
        Reply(201, {"sid": "CAagent", "status": "queued"}),
        Reply(200, {"sid": "CAagent", "status": "ringing"}),
        Reply(200, {"sid": "CAagent", "status": "in-progress"}),
        Reply(200, {"sid": "CAcaller", "status": "in-progress"}),
    )
    result = await twilio_transfer(
        server,
        "Ada wants to move her appointment to Friday.",
        wait_url="https://bot.example/hold.xml",
        room="room-1",
    )
    assert result.outcome == "bridged" and result.agent_call_id == "CAagent"
    calls = [(r.method, r.path) for r in server.requests]
    assert calls == [
        ("POST", "/2010-04-01/Accounts/AC1/Calls.json"),
        ("GET", "/2010-04-01/Accounts/AC1/Calls/CAagent.json"),
        ("GET", "/2010-04-01/Accounts/AC1/Calls/CAagent.json"),
        ("POST", "/2010-04-01/Accounts/AC1/Calls/CAcaller.json"),
    ]
    agent = server.requests[0].form()
    assert agent["To"] == "+15550001111"
    assert agent["Twiml"].startswith("<Response><Say>Ada wants to move")
    assert 'startConferenceOnEnter="true"' in agent["Twiml"] and ">room-1<" in agent["Twiml"]
    caller = server.requests[3].form()["Twiml"]
    assert 'startConferenceOnEnter="false"' in caller and ">room-1<" in caller
    assert 'waitUrl="https://bot.example/hold.xml"' in caller


async def test_twilio_busy_agent_leaves_the_caller_with_the_bot(
    server: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Reply(201, {"sid": "CAagent0123"}), Reply(200, {"status": "busy"}))
    with caplog.at_level(logging.INFO, logger="callpipe"):
        result = await twilio_transfer(server)
    assert result.outcome == "agent-unavailable" and result.agent_status == "busy"
    assert [r.method for r in server.requests] == ["POST", "GET"]  # the caller was not moved
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("callpipe")]
    assert any("busy" in line and "CAag…23" in line for line in lines), lines
    assert not any("CAagent0123" in line for line in lines)  # the agent's call id, masked


async def test_telnyx_dial_speak_stop_stream_bridge(server: ProviderServer) -> None:
    server.script(
        Reply(200, {"data": {"call_control_id": "agent-1", "call_leg_id": "l"}}),
        Reply(200, {"data": {"result": "ok"}}),
        Reply(200, {"data": {"result": "ok"}}),
        Reply(200, {"data": {"result": "ok"}}),
    )
    waited: list[tuple[str, str]] = []

    async def wait_for(call_id: str, event: str) -> bool:
        waited.append((call_id, event))
        return True

    result = await telnyx_transfer(server, "Ada wants Friday.", wait_for)
    assert result.outcome == "bridged" and result.agent_call_id == "agent-1"
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/v2/calls"),
        ("POST", "/v2/calls/agent-1/actions/speak"),
        ("POST", "/v2/calls/caller-1/actions/bridge"),
        ("POST", "/v2/calls/caller-1/actions/streaming_stop"),
    ]
    assert all(r.headers["authorization"] == "Bearer KEY" for r in server.requests)
    assert server.requests[0].json() == {
        "connection_id": "conn-1",
        "to": "+15550001111",
        "from": "+15557654321",
    }
    assert server.requests[1].json()["payload"] == "Ada wants Friday."
    assert server.requests[2].json()["call_control_id"] == "agent-1"
    assert waited == [("agent-1", "call.answered"), ("agent-1", "call.speak.ended")]


async def test_telnyx_unanswered_agent_stops_before_touching_the_caller(
    server: ProviderServer,
) -> None:
    server.script(Reply(200, {"data": {"call_control_id": "agent-1"}}))

    async def never(call_id: str, event: str) -> bool:
        return False

    result = await telnyx_transfer(server, wait_for=never)
    assert result.outcome == "agent-unavailable"
    # The agent's leg, maybe still ringing, is hung up; the caller is not touched.
    assert [r.path for r in server.requests] == ["/v2/calls", "/v2/calls/agent-1/actions/hangup"]


async def test_telnyx_agent_dial_is_not_retried_on_5xx(server: ProviderServer) -> None:
    from callpipe.errors import CallControlError

    server.script(Reply(503, {"errors": []}))

    with pytest.raises(CallControlError):
        await telnyx_transfer(server)
    assert len(server.requests) == 1


async def test_telnyx_refuses_a_summary_speak_would_refuse_before_dialing(
    server: ProviderServer,
) -> None:
    from callpipe.errors import ConfigurationError

    for summary in ("", "x" * 3001):
        with pytest.raises(ConfigurationError, match="3000"):
            await telnyx_transfer(server, summary)
    assert server.requests == []  # nobody's phone rang


async def test_twilio_caller_gone_before_the_move_hangs_up_the_agent(
    server: ProviderServer,
) -> None:
    from callpipe.errors import CallControlError

    server.script(
        Reply(201, {"sid": "CAagent"}),
        Reply(200, {"status": "in-progress"}),
        Reply(400, {"code": 21220, "message": "Call is not in-progress"}),
        Reply(200, {"sid": "CAagent", "status": "completed"}),
    )
    with pytest.raises(CallControlError):
        await twilio_transfer(server)
    last = server.requests[-1]
    assert (last.method, last.path) == ("POST", "/2010-04-01/Accounts/AC1/Calls/CAagent.json")
    assert last.form() == {"Status": "completed"}


async def test_telnyx_refused_bridge_keeps_the_bot_and_hangs_up_the_agent(
    server: ProviderServer,
) -> None:
    from callpipe.errors import CallControlError

    server.script(
        Reply(200, {"data": {"call_control_id": "agent-1"}}),
        Reply(200, {"data": {"result": "ok"}}),
        Reply(422, {"errors": [{"code": "90018", "title": "Call has already ended"}]}),
        Reply(200, {"data": {"result": "ok"}}),
    )

    with pytest.raises(CallControlError):
        await telnyx_transfer(server)
    paths = [r.path for r in server.requests]
    assert paths[-2:] == ["/v2/calls/caller-1/actions/bridge", "/v2/calls/agent-1/actions/hangup"]
    assert not any(p.endswith("streaming_stop") for p in paths)  # the bot stays
