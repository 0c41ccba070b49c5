"""SignalWire end to end: the demo bot answers a simulated SignalWire call, and a signed cXML
webhook's stream token admits exactly that call's SignalWire stream."""

from __future__ import annotations

from typing import Any

import httpx

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.types import WebSocketRunnerArguments
from callpipe.testing.server import running_server
from callpipe.testing.simulator import CallIdentity, SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

from .test_demo_bot import greeted_then_goodbye

HOST = "bot.example"
KEY = "PSK_callpipe_integration"
PROJECT = "6bfbbe86-a901-4197-8759-2a0de1fa319d"
CALL = "0703574f-b151-465d-aedb-28972eb513c7"
FORM = {
    "AccountSid": PROJECT,
    "ApiVersion": "2010-04-01",
    "CallSid": CALL,
    "CallStatus": "ringing",
    "Direction": "inbound",
    "From": "+15550100001",
    "To": "+15550100002",
}


@virtual_time
async def test_demo_bot_answers_a_simulated_signalwire_call() -> None:
    await greeted_then_goodbye("signalwire")  # greeting, "#", goodbye, hang-up: asserted there


def _signature(url: str) -> str:
    from twilio.request_validator import RequestValidator  # the Compatibility scheme

    return str(RequestValidator(KEY).compute_signature(url, FORM))


async def _secure_call(call_id: str) -> tuple[list[tuple[str | None, Any]], Any]:
    seen: list[tuple[str | None, Any]] = []

    async def bot(args: WebSocketRunnerArguments) -> None:
        seen.append((args.transport_type, args.call_data))

    creds = Credentials(extra={"SIGNALWIRE_SIGNING_KEY": KEY})
    app = create_app(bot, RunnerConfig(proxy=HOST), credentials=creds, secret=b"k" * 32)
    async with running_server(app) as addr, httpx.AsyncClient() as http:
        headers = {"X-SignalWire-Signature": _signature(f"https://{HOST}/")}
        answer = await http.post(f"http://{addr}/", data=FORM, headers=headers)
        assert answer.status_code == 200, answer.text
        token = answer.text.split(f"wss://{HOST}/ws/", 1)[1].split('"', 1)[0]
        identity = CallIdentity(call_id=call_id, account_id=PROJECT)
        async with SimulatedCall(
            f"ws://{addr}/ws/{token}", "signalwire", identity=identity
        ) as call:
            await call.wait_for_hangup(timeout=5)
        return seen, call.result()


@virtual_time
async def test_signed_webhook_token_admits_that_calls_signalwire_stream() -> None:
    seen, _ = await _secure_call(CALL)
    assert len(seen) == 1
    transport_type, call_data = seen[0]
    assert transport_type == "signalwire"
    assert call_data.call_id == CALL


@virtual_time
async def test_the_token_is_bound_to_the_webhooks_call() -> None:
    other = "11111111-2222-3333-4444-555555555555"
    seen, result = await _secure_call(other)
    assert seen == []
    assert result.close_code == 4003
