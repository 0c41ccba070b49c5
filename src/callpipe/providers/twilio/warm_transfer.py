"""Twilio warm transfer (a conference; everything through the REST API).

1. ``POST .../Calls.json`` to the agent with inline TwiML: ``<Say>`` the summary (only the agent
   hears it: a whisper), then ``<Dial><Conference endConferenceOnExit="true">`` the room.
2. ``GET .../Calls/{agent}.json`` until the agent answered (``in-progress``); busy, no answer or
   failure ends the attempt and the bot keeps the caller.
3. ``POST .../Calls/{caller}.json`` with TwiML putting the caller in the same room
   (``startConferenceOnEnter="false"``, hold music from ``waitUrl`` until the agent has heard
   the summary and joins). New TwiML ends the caller's media stream: the bot leaves. If that
   update is refused (the caller hung up meanwhile), the agent's call is ended
   (``POST .../Calls/{agent}.json`` ``Status=completed``) instead of left in an empty room.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import httpx

from callpipe.errors import CallControlError
from callpipe.log import mask
from callpipe.providers.twilio.dial import TWILIO_DIALER
from callpipe.telephony.base import validate_transfer_target
from callpipe.telephony.dial.client import place_call
from callpipe.telephony.dial.types import DialRequest, ProviderAccount, normalize_status
from callpipe.telephony.dial.warm_transfer import WarmTransferResult
from callpipe.telephony.twilio import TwilioCallControl

logger = logging.getLogger(__name__)


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
    root = base_url or TWILIO_DIALER.host
    agent_twiml = (
        f"<Response><Say>{escape(summary)}</Say>"
        f"{_conference(room, starts=True, wait_url=None)}</Response>"
    )
    handle = await place_call(
        account,
        DialRequest(to=agent, from_=from_, twiml=agent_twiml, ring_timeout=int(ring_timeout)),
        dialer=TWILIO_DIALER,
        base_url=root,
        transport=transport,
    )
    sid = account.need("ACCOUNT_SID")
    caller = _call_control(account, caller_call_sid, root, transport)
    agent_path = f"/2010-04-01/Accounts/{sid}/Calls/{handle.call_id}.json"
    try:
        status = await _wait_answered(caller, agent_path, ring_timeout + 5.0, poll)
        if status != "answered":
            logger.info("warm transfer: agent %s (%s); caller stays", status, mask(handle.call_id))
            return WarmTransferResult("agent-unavailable", handle.call_id, room, status)
        caller_twiml = f"<Response>{_conference(room, starts=False, wait_url=wait_url)}</Response>"
        caller_path = f"/2010-04-01/Accounts/{sid}/Calls/{caller_call_sid}.json"
        try:
            await caller.request_ok("POST", caller_path, data={"Twiml": caller_twiml})
        except CallControlError:
            # The caller could not be moved (e.g. they hung up on hold): the agent would wait
            # in an empty room. End their call (POST Status=completed) and report the error.
            await _hang_up(account, handle.call_id, root, transport)
            raise
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


def _call_control(
    account: ProviderAccount, call_sid: str, root: str, transport: httpx.AsyncBaseTransport | None
) -> TwilioCallControl:
    """REST control of one call of ``account`` (auth token or API key, as configured)."""
    return TwilioCallControl(
        account_sid=account.need("ACCOUNT_SID"),
        call_sid=call_sid,
        auth_token=account.values.get("AUTH_TOKEN"),
        api_key_sid=account.values.get("API_KEY_SID"),
        api_key_secret=account.values.get("API_KEY_SECRET"),
        base_url=root,
        transport=transport,
    )


async def _hang_up(
    account: ProviderAccount, call_sid: str, root: str, transport: httpx.AsyncBaseTransport | None
) -> None:
    """Best effort (``hang_up`` never raises)."""
    cc = _call_control(account, call_sid, root, transport)
    try:
        await cc.hang_up()
    finally:
        await cc.aclose()
