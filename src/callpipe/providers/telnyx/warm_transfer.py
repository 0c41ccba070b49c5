"""Telnyx warm transfer (Call Control; the caller's call must be a Call Control call, and the
agent's progress comes from your webhooks through ``wait_for``).

1. ``POST /v2/calls`` to the agent (``connection_id``, ``to``, ``from``).
2. ``wait_for(agent_id, "call.answered")``, then ``POST /v2/calls/{agent}/actions/speak`` with
   the summary and ``wait_for(agent_id, "call.speak.ended")``.
3. ``POST /v2/calls/{caller}/actions/bridge`` with the agent's ``call_control_id``, then
   ``POST /v2/calls/{caller}/actions/streaming_stop`` (the bot leaves).

Bridge first: if the bridge is refused the caller still has the bot (with the stream stopped
first they would have had nobody), and the request that ends the bot's stream is the last one,
so the pipeline ending with it cannot cut the sequence short. An agent who did not answer in
time, or could not be bridged, is hung up (``POST /v2/calls/{agent}/actions/hangup``) rather
than left on a ringing or silent line.

The bodies are the ones the official ``telnyx`` SDK sends for ``calls.dial``,
``calls.actions.speak``, ``stop_streaming`` and ``bridge`` (tests/unit/telephony/
test_sdk_conformance.py). ``voice="female"`` with ``language`` is Telnyx's basic TTS; any voice
Telnyx names (``AWS.Polly.Joanna-Neural``, ``Telnyx.NaturalHD.astra``, ...) works too.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.telephony.base import RetryPolicy, validate_transfer_target
from callpipe.telephony.dial.warm_transfer import WaitFor, WarmTransferResult
from callpipe.telephony.telnyx import DEFAULT_BASE_URL, TelnyxCallControl

SPEAK_MAX_CHARS = 3000  # Call Control speak: "There is a 3,000 character limit" on payload


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
    if not summary.strip() or len(summary) > SPEAK_MAX_CHARS:
        # Checked before the agent's phone rings: speak refuses it only once they answered.
        raise ConfigurationError(f"summary must be 1-{SPEAK_MAX_CHARS} characters for speak")
    root = base_url or DEFAULT_BASE_URL
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
            await _hang_up_agent(agent_id, api_key, root, transport)
            return WarmTransferResult("agent-unavailable", agent_id, agent_status="no-answer")
        speak = {
            "payload": summary,
            "voice": voice,
            "language": language,
            "command_id": str(uuid.uuid4()),
        }
        await caller.request_ok("POST", f"/v2/calls/{agent_id}/actions/speak", json=speak)
        await wait_for(agent_id, "call.speak.ended")
        bridge = {"call_control_id": agent_id, "command_id": str(uuid.uuid4())}
        try:
            await caller.request_ok("POST", f"{actions}/bridge", json=bridge)
        except CallControlError:
            await _hang_up_agent(agent_id, api_key, root, transport)
            raise
        stop = {"command_id": str(uuid.uuid4())}
        await caller.request_ok("POST", f"{actions}/streaming_stop", json=stop)
    finally:
        await creator.aclose()
        await caller.aclose()
    return WarmTransferResult("bridged", agent_id, agent_status="answered")


async def _hang_up_agent(
    agent_id: str, api_key: str, root: str, transport: httpx.AsyncBaseTransport | None
) -> None:
    """Best effort (``hang_up`` never raises): the agent's leg is of no use any more."""
    agent = TelnyxCallControl(
        call_control_id=agent_id, api_key=api_key, base_url=root, transport=transport
    )
    try:
        await agent.hang_up()
    finally:
        await agent.aclose()
