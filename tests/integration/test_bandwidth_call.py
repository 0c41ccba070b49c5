"""Bandwidth end to end: the demo bot answers a simulated Bandwidth call (greeting, barge-in with
``clear``, goodbye and hang-up), and a webhook authenticated after Bandwidth's 401 challenge gets
a stream token that admits exactly that call's stream."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.types import WebSocketRunnerArguments
from callpipe.testing.server import running_server
from callpipe.testing.simulator import CallIdentity, SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

from .test_demo_bot import barge_in, demo_server

pytestmark = pytest.mark.integration

HOST = "bot.example"
AUTH = ("bw-user", "bw-pass")
ACCOUNT = "55555555"
CALL = "c-95ac8d6e-1a31c52e-b38f-4198-93c1-51633ec68f8d"
INITIATE = {
    "eventType": "initiate",
    "accountId": ACCOUNT,
    "applicationId": "7fc9698a-b04a-468b-9e8f-91238c0d0086",
    "from": "+15550100001",
    "to": "+15550100002",
    "direction": "inbound",
    "callId": CALL,
}


@virtual_time
async def test_demo_bot_greets_and_hangs_up_a_simulated_bandwidth_call() -> None:
    async with (
        demo_server(session_timeout=4.0) as url,
        SimulatedCall(url, "bandwidth", keep_messages=True) as call,
    ):
        assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.5), "no greeting"
        assert await call.wait_for_hangup(timeout=10)
        result = call.result()
    assert result.bot_speech_secs(0.0, 3.0) > 0.8
    assert result.ended_by == "bot" and result.close_code == 1000
    assert result.events_of("invalid") == []  # every message the bot sent is Bandwidth's
    sent = [json.loads(m) for m in result.messages_received if isinstance(m, str)]
    assert {m["eventType"] for m in sent} <= {"playAudio", "clear"}
    assert {m["media"]["contentType"] for m in sent if m["eventType"] == "playAudio"} == {
        "audio/pcmu"
    }


@virtual_time
async def test_barge_in_sends_bandwidths_clear() -> None:
    async with demo_server() as url, SimulatedCall(url, "bandwidth", keep_messages=True) as call:
        barge_at, clear, _ = await barge_in(call)
        result = call.result()
    assert barge_at < clear.t < barge_at + 1.5
    assert {"eventType": "clear"} in [
        json.loads(m) for m in result.messages_received if isinstance(m, str)
    ]


async def _secure_call(call_id: str) -> tuple[list[tuple[str | None, Any]], Any]:
    seen: list[tuple[str | None, Any]] = []

    async def bot(args: WebSocketRunnerArguments) -> None:
        seen.append((args.transport_type, args.call_data))

    creds = Credentials(extra={"BANDWIDTH_CALLBACK_AUTH": ":".join(AUTH)})
    app = create_app(bot, RunnerConfig(proxy=HOST), credentials=creds, secret=b"k" * 32)
    body = json.dumps(INITIATE)
    headers = {"Content-Type": "application/json"}
    async with running_server(app) as addr, httpx.AsyncClient() as http:
        # As Bandwidth does it: no credentials, a 401 challenge, then the same with Basic auth.
        first = await http.post(f"http://{addr}/", content=body, headers=headers)
        assert first.status_code == 401, first.text
        assert first.headers["www-authenticate"].startswith("Basic ")
        basic = "Basic " + base64.b64encode(":".join(AUTH).encode()).decode()
        answer = await http.post(
            f"http://{addr}/", content=body, headers={**headers, "Authorization": basic}
        )
        assert answer.status_code == 200, answer.text
        stream = ET.fromstring(answer.text).find("StartStream")
        assert stream is not None
        url = stream.get("destination", "").replace(f"wss://{HOST}", f"ws://{addr}")
        identity = CallIdentity(call_id=call_id, account_id=ACCOUNT)
        async with SimulatedCall(url, "bandwidth", identity=identity) as call:
            await call.wait_for_hangup(timeout=5)
        return seen, call.result()


@virtual_time
async def test_challenged_webhook_token_admits_that_calls_stream() -> None:
    seen, _ = await _secure_call(CALL)
    assert len(seen) == 1
    transport_type, call_data = seen[0]
    assert transport_type == "bandwidth"
    assert (call_data.call_id, call_data["account_id"]) == (CALL, ACCOUNT)
    assert call_data.from_number == INITIATE["from"]


@virtual_time
async def test_the_token_is_bound_to_the_webhooks_call() -> None:
    seen, result = await _secure_call("c-11111111-22222222-3333-4444-5555-666666666666")
    assert seen == []
    assert result.close_code == 4003
