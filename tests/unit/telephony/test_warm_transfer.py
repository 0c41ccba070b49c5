"""Warm transfer against the REST fakes: the exact sequence of requests per provider."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from callpipe.providers.telnyx.warm_transfer import telnyx_warm_transfer
from callpipe.providers.twilio.warm_transfer import twilio_warm_transfer
from callpipe.telephony.dial import ProviderAccount

from ._server import ProviderServer, Reply, start_server

ACCOUNT = ProviderAccount.from_env(
    "twilio", {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok"}
)


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    state, httpd = start_server()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


def form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode()).items()}


async def test_twilio_dials_briefs_then_moves_the_caller(server: ProviderServer) -> None:
    server.script(
        Reply(201, {"sid": "CAagent", "status": "queued"}),
        Reply(200, {"sid": "CAagent", "status": "ringing"}),
        Reply(200, {"sid": "CAagent", "status": "in-progress"}),
        Reply(200, {"sid": "CAcaller", "status": "in-progress"}),
    )
    result = await twilio_warm_transfer(
        ACCOUNT,
        "CAcaller",
        "+15550001111",
        from_="+15557654321",
        summary="Ada wants to move her appointment to Friday.",
        wait_url="https://bot.example/hold.xml",
        room="room-1",
        poll=0.01,
        base_url=server.url,
    )
    assert result.outcome == "bridged" and result.agent_call_id == "CAagent"
    calls = [(r.method, r.path) for r in server.requests]
    assert calls == [
        ("POST", "/2010-04-01/Accounts/AC1/Calls.json"),
        ("GET", "/2010-04-01/Accounts/AC1/Calls/CAagent.json"),
        ("GET", "/2010-04-01/Accounts/AC1/Calls/CAagent.json"),
        ("POST", "/2010-04-01/Accounts/AC1/Calls/CAcaller.json"),
    ]
    agent = form(server.requests[0].body)
    assert agent["To"] == "+15550001111"
    assert agent["Twiml"].startswith("<Response><Say>Ada wants to move")
    assert 'startConferenceOnEnter="true"' in agent["Twiml"] and ">room-1<" in agent["Twiml"]
    caller = form(server.requests[3].body)["Twiml"]
    assert 'startConferenceOnEnter="false"' in caller and ">room-1<" in caller
    assert 'waitUrl="https://bot.example/hold.xml"' in caller


async def test_twilio_busy_agent_leaves_the_caller_with_the_bot(server: ProviderServer) -> None:
    server.script(Reply(201, {"sid": "CAagent"}), Reply(200, {"status": "busy"}))
    result = await twilio_warm_transfer(
        ACCOUNT,
        "CAcaller",
        "+15550001111",
        from_="+15557654321",
        summary="x",
        poll=0.01,
        base_url=server.url,
    )
    assert result.outcome == "agent-unavailable" and result.agent_status == "busy"
    assert [r.method for r in server.requests] == ["POST", "GET"]  # the caller was not moved


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

    result = await telnyx_warm_transfer(
        api_key="KEY",
        connection_id="conn-1",
        caller_call_control_id="caller-1",
        agent="+15550001111",
        from_="+15557654321",
        summary="Ada wants Friday.",
        wait_for=wait_for,
        base_url=server.url,
    )
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

    result = await telnyx_warm_transfer(
        api_key="KEY",
        connection_id="conn-1",
        caller_call_control_id="caller-1",
        agent="+15550001111",
        from_="+15557654321",
        summary="x",
        wait_for=never,
        base_url=server.url,
    )
    assert result.outcome == "agent-unavailable"
    # The agent's leg, maybe still ringing, is hung up; the caller is not touched.
    assert [r.path for r in server.requests] == ["/v2/calls", "/v2/calls/agent-1/actions/hangup"]


async def test_telnyx_agent_dial_is_not_retried_on_5xx(server: ProviderServer) -> None:
    from callpipe.errors import CallControlError

    server.script(Reply(503, {"errors": []}))

    async def yes(call_id: str, event: str) -> bool:
        return True

    with pytest.raises(CallControlError):
        await telnyx_warm_transfer(
            api_key="KEY",
            connection_id="c",
            caller_call_control_id="caller-1",
            agent="+15550001111",
            from_="+1",
            summary="x",
            wait_for=yes,
            base_url=server.url,
        )
    assert len(server.requests) == 1


async def test_telnyx_refuses_a_summary_speak_would_refuse_before_dialing(
    server: ProviderServer,
) -> None:
    from callpipe.errors import ConfigurationError

    async def answered(call_id: str, event: str) -> bool:
        return True

    for summary in ("", "x" * 3001):
        with pytest.raises(ConfigurationError, match="3000"):
            await telnyx_warm_transfer(
                api_key="KEY",
                connection_id="conn-1",
                caller_call_control_id="caller-1",
                agent="+15550001111",
                from_="+15557654321",
                summary=summary,
                wait_for=answered,
                base_url=server.url,
            )
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
        await twilio_warm_transfer(
            ACCOUNT,
            "CAcaller",
            "+15550001111",
            from_="+15557654321",
            summary="x",
            poll=0.01,
            base_url=server.url,
        )
    last = server.requests[-1]
    assert (last.method, last.path) == ("POST", "/2010-04-01/Accounts/AC1/Calls/CAagent.json")
    assert form(last.body) == {"Status": "completed"}


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

    async def yes(call_id: str, event: str) -> bool:
        return True

    with pytest.raises(CallControlError):
        await telnyx_warm_transfer(
            api_key="KEY",
            connection_id="conn-1",
            caller_call_control_id="caller-1",
            agent="+15550001111",
            from_="+15557654321",
            summary="x",
            wait_for=yes,
            base_url=server.url,
        )
    paths = [r.path for r in server.requests]
    assert paths[-2:] == ["/v2/calls/caller-1/actions/bridge", "/v2/calls/agent-1/actions/hangup"]
    assert not any(p.endswith("streaming_stop") for p in paths)  # the bot stays
