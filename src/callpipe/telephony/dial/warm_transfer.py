"""Warm transfer: the bot calls a person, briefs them, then hands the caller over and leaves.

Twilio (a conference; everything through the REST API):

1. ``POST .../Calls.json`` to the agent with inline TwiML: ``<Say>`` the summary (only the agent
   hears it: a whisper), then ``<Dial><Conference endConferenceOnExit="true">`` the room.
2. ``GET .../Calls/{agent}.json`` until the agent answered (``in-progress``); busy, no answer or
   failure ends the attempt and the bot keeps the caller.
3. ``POST .../Calls/{caller}.json`` with TwiML putting the caller in the same room
   (``startConferenceOnEnter="false"``, hold music from ``waitUrl`` until the agent has heard
   the summary and joins). New TwiML ends the caller's media stream: the bot leaves.

Telnyx (Call Control; the caller's call must be a Call Control call, and the agent's progress
comes from your webhooks through ``wait_for``):

1. ``POST /v2/calls`` to the agent (``connection_id``, ``to``, ``from``).
2. ``wait_for(agent_id, "call.answered")``, then ``POST /v2/calls/{agent}/actions/speak`` with
   the summary and ``wait_for(agent_id, "call.speak.ended")``.
3. ``POST /v2/calls/{caller}/actions/streaming_stop`` (the bot leaves), then
   ``POST /v2/calls/{caller}/actions/bridge`` with the agent's ``call_control_id``.

While the agent is dialed the caller stays with the bot, which should say so (callpipe has no
audio mixer for hold music under speech yet; Twilio's ``waitUrl`` music covers step 3).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

import httpx

from callpipe.errors import CallControlError
from callpipe.telephony.base import RetryPolicy, validate_transfer_target
from callpipe.telephony.dial.client import place_call
from callpipe.telephony.dial.providers import DEFAULT_HOSTS, ProviderAccount
from callpipe.telephony.dial.types import DialRequest, normalize_status
from callpipe.telephony.telnyx import TelnyxCallControl
from callpipe.telephony.twilio import TwilioCallControl

logger = logging.getLogger(__name__)

Outcome = Literal["bridged", "agent-unavailable"]


@dataclass(frozen=True, slots=True)
class WarmTransferResult:
    outcome: Outcome
    agent_call_id: str
    room: str = ""
    agent_status: str = ""


def _conference(room: str, *, starts: bool, wait_url: str | None) -> str:
    attrs = [
        f"startConferenceOnEnter={quoteattr('true' if starts else 'false')}",
        f"endConferenceOnExit={quoteattr('true' if starts else 'false')}",
        'beep="false"',
    ]
    if wait_url:
        attrs.append(f"waitUrl={quoteattr(wait_url)}")
    return f"<Dial><Conference {' '.join(attrs)}>{escape(room)}</Conference></Dial>"


async def twilio_warm_transfer(
    account: ProviderAccount,
    caller_call_sid: str,
    agent: str,
    *,
    from_: str,
    summary: str,
    wait_url: str | None = None,
    room: str | None = None,
    ring_timeout: float = 30.0,
    poll: float = 1.0,
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> WarmTransferResult:
    """Dial ``agent``, whisper ``summary``, then move the caller into the agent's conference."""
    agent = validate_transfer_target(agent)
    room = room or f"callpipe-{uuid.uuid4().hex[:12]}"
    root = base_url or DEFAULT_HOSTS["twilio"]
    agent_twiml = (
        f"<Response><Say>{escape(summary)}</Say>"
        f"{_conference(room, starts=True, wait_url=None)}</Response>"
    )
    handle = await place_call(
        account,
        DialRequest(to=agent, from_=from_, twiml=agent_twiml, ring_timeout=int(ring_timeout)),
        base_url=root,
        transport=transport,
    )
    sid = account.need("ACCOUNT_SID")
    caller = TwilioCallControl(
        account_sid=sid,
        call_sid=caller_call_sid,
        auth_token=account.values.get("AUTH_TOKEN"),
        api_key_sid=account.values.get("API_KEY_SID"),
        api_key_secret=account.values.get("API_KEY_SECRET"),
        base_url=root,
        transport=transport,
    )
    agent_path = f"/2010-04-01/Accounts/{sid}/Calls/{handle.call_id}.json"
    try:
        status = await _wait_answered(caller, agent_path, ring_timeout + 5.0, poll)
        if status != "answered":
            logger.info("warm transfer: agent %s (%s); caller stays", status, handle.call_id)
            return WarmTransferResult("agent-unavailable", handle.call_id, room, status)
        caller_twiml = f"<Response>{_conference(room, starts=False, wait_url=wait_url)}</Response>"
        caller_path = f"/2010-04-01/Accounts/{sid}/Calls/{caller_call_sid}.json"
        await caller.request_ok("POST", caller_path, data={"Twiml": caller_twiml})
    finally:
        await caller.aclose()
    return WarmTransferResult("bridged", handle.call_id, room, "answered")


async def _wait_answered(cc: TwilioCallControl, path: str, deadline: float, poll: float) -> str:
    """The agent leg's first decisive status: ``answered`` or a terminal one."""
    try:
        async with asyncio.timeout(deadline):
            while True:
                response = await cc.request_ok("GET", path)
                body: Any = response.json()
                word = body.get("status") if isinstance(body, dict) else None
                status = normalize_status(word) if isinstance(word, str) else None
                if status in ("answered", "busy", "no-answer", "failed", "canceled", "completed"):
                    return status
                await asyncio.sleep(poll)
    except TimeoutError:
        return "no-answer"


WaitFor = Callable[[str, str], Awaitable[bool]]
"""``wait_for(call_control_id, event_type)``: True once your webhooks saw that event."""


async def telnyx_warm_transfer(
    *,
    api_key: str,
    connection_id: str,
    caller_call_control_id: str,
    agent: str,
    from_: str,
    summary: str,
    wait_for: WaitFor,
    voice: str = "female",
    language: str = "en-US",
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> WarmTransferResult:
    """Dial ``agent``, speak ``summary`` to them, stop the caller's stream and bridge the two."""
    agent = validate_transfer_target(agent)
    root = base_url or DEFAULT_HOSTS["telnyx"]
    caller = TelnyxCallControl(
        call_control_id=caller_call_control_id,
        api_key=api_key,
        base_url=root,
        retry=RetryPolicy(timeout=10.0),
        transport=transport,
    )
    # Creating a call is not retried (it could ring the agent twice): one attempt.
    creator = TelnyxCallControl(
        call_control_id="",
        api_key=api_key,
        base_url=root,
        retry=RetryPolicy(timeout=10.0, retries=0),
        transport=transport,
    )
    actions = f"/v2/calls/{caller_call_control_id}/actions"
    try:
        created = await creator.request(
            "POST",
            "/v2/calls",
            json={"connection_id": connection_id, "to": agent, "from": from_},
        )
        body: Any = created.json() if created.is_success else None
        data = body.get("data") if isinstance(body, dict) else None
        agent_id = data.get("call_control_id") if isinstance(data, dict) else None
        if not isinstance(agent_id, str) or not agent_id:
            raise CallControlError(f"telnyx dial of the agent failed: HTTP {created.status_code}")
        if not await wait_for(agent_id, "call.answered"):
            return WarmTransferResult("agent-unavailable", agent_id, agent_status="no-answer")
        speak = {
            "payload": summary,
            "voice": voice,
            "language": language,
            "command_id": str(uuid.uuid4()),
        }
        await caller.request_ok("POST", f"/v2/calls/{agent_id}/actions/speak", json=speak)
        await wait_for(agent_id, "call.speak.ended")
        stop = {"command_id": str(uuid.uuid4())}
        await caller.request_ok("POST", f"{actions}/streaming_stop", json=stop)
        bridge = {"call_control_id": agent_id, "command_id": str(uuid.uuid4())}
        await caller.request_ok("POST", f"{actions}/bridge", json=bridge)
    finally:
        await creator.aclose()
        await caller.aclose()
    return WarmTransferResult("bridged", agent_id, agent_status="answered")
