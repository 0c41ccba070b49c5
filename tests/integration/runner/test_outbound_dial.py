"""POST /calls against a fake Twilio API, then the signed answer webhook, the stream and callbacks.

The whole outbound path on a real uvicorn server: the dial reaches the provider fake with the
runner's answer and status URLs, the answer webhook's stream token brings the dial metadata to
``bot()``, and signed status/AMD callbacks update the call (unsigned ones are refused).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.dials import AMD_RESULTS, DIAL_STATUS, DialEvent, current_dial_events
from callpipe.telephony.dial import ProviderAccount
from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time
from unit.telephony._server import ProviderServer, Reply

from .harness import fake_call, twilio_signed

pytestmark = pytest.mark.integration

HOST = "bot.example.test"
KEY = "k" * 32
TOKEN = "twilio-auth-token"


def signed(path: str, fields: dict[str, str]) -> dict[str, Any]:
    return twilio_signed(HOST, TOKEN, path, fields)


async def test_dial_answer_stream_and_callbacks(provider: ProviderServer) -> None:
    seen: list[dict[str, Any]] = []
    queues: list[asyncio.Queue[DialEvent] | None] = []

    async def bot(args: Any) -> None:
        seen.append(dict(args.body))
        queues.append(current_dial_events())

    app = create_app(
        bot,
        RunnerConfig(proxy=HOST, transport="twilio"),
        credentials=Credentials(twilio_auth_token=TOKEN, api_key=KEY),
        secret=b"s" * 32,
    )
    app.state.outbound.accounts["twilio"] = ProviderAccount.from_env(
        "twilio", {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "rest-tok"}
    )
    app.state.outbound.base_urls["twilio"] = provider.url
    events: list[DialEvent] = []
    app.state.runner.dials.add_listener(events.append)
    provider.script(Reply(201, {"sid": "CA777", "status": "queued"}))
    busy_before = DIAL_STATUS.value(provider="twilio", status="completed")
    amd_before = AMD_RESULTS.value(provider="twilio", source="provider", result="human")
    dial = {
        "to": "+15551234567",
        "from": "+15557654321",
        "provider": "twilio",
        "machine_detection": "enable",
        "metadata": {"name": "Ada", "reason": "appointment reminder"},
    }
    async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
        refused = await http.post("/calls", json=dial)
        assert refused.status_code == 401
        wrong = await http.post("/calls", json=dial, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert provider.requests == []

        auth = {"Authorization": f"Bearer {KEY}"}
        placed = await http.post("/calls", json=dial, headers=auth)
        assert placed.status_code == 201, placed.text
        dial_id = placed.json()["dial_id"]
        assert placed.json()["call_id"] == "CA777"
        form = parse_qs(provider.requests[0].body.decode())
        assert form["Url"] == [f"https://{HOST}/"]
        assert form["StatusCallback"] == [f"https://{HOST}/calls/status"]
        assert form["MachineDetection"] == ["Enable"]

        # Twilio fetches the answer URL once the callee picks up.
        answer = {"CallSid": "CA777", "From": "+15557654321", "To": "+15551234567"}
        twiml = await http.post("/", **signed("/", answer))
        assert twiml.status_code == 200
        match = re.search(r"/ws/([^\"]+)\"", twiml.text)
        assert match is not None
        result = await fake_call(f"ws://{addr}/ws/{match.group(1)}", "twilio", call_id="CA777")
        assert result.close_code in (None, 1000)
        assert len(seen) == 1
        assert seen[0]["name"] == "Ada" and seen[0]["reason"] == "appointment reminder"
        assert seen[0]["dial"]["dial_id"] == dial_id

        # Callbacks: unsigned refused; signed ones update the dial.
        forged = await http.post("/calls/status", data={"CallSid": "CA777", "CallStatus": "busy"})
        assert forged.status_code == 403
        for fields in (
            {"CallSid": "CA777", "CallStatus": "ringing"},
            {"CallSid": "CA777", "CallStatus": "in-progress"},
            {"CallSid": "CA777", "AnsweredBy": "human"},
            {"CallSid": "CA777", "CallStatus": "completed"},
        ):
            ok = await http.post("/calls/status", **signed("/calls/status", fields))
            assert ok.status_code == 204
        state = (await http.get(f"/calls/{dial_id}", headers=auth)).json()
        assert state["status"] == "completed" and state["answered_by"] == "human"
        assert [tuple(h) for h in state["history"]] == [
            ("status", "ringing"),
            ("status", "answered"),
            ("amd", "human"),
            ("status", "completed"),
        ]
    assert [(e.kind, e.value) for e in events][-1] == ("status", "completed")
    # The bot of the dialed call got its own queue of the call's later events.
    (queue,) = queues
    assert queue is not None
    later = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [(e.kind, e.value) for e in later] == [
        ("status", "ringing"),
        ("status", "answered"),
        ("amd", "human"),
        ("status", "completed"),
    ]
    assert DIAL_STATUS.value(provider="twilio", status="completed") == busy_before + 1
    assert AMD_RESULTS.value(provider="twilio", source="provider", result="human") == amd_before + 1


@virtual_time
async def test_dial_needs_configured_api_key() -> None:
    async def bot(args: Any) -> None:
        return None

    app = create_app(bot, RunnerConfig(proxy=HOST), credentials=Credentials(), secret=b"s" * 32)
    async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
        r = await http.post("/calls", json={"to": "+1", "from": "+2", "provider": "twilio"})
        assert r.status_code == 403
