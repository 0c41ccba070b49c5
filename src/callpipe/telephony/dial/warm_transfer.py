"""Warm transfer: the bot calls a person, briefs them, then hands the caller over and leaves.

Each provider that supports it implements it in its own package
(:mod:`callpipe.providers.twilio.warm_transfer`, :mod:`callpipe.providers.telnyx.warm_transfer`);
this module holds what they share: the result and the ``wait_for`` callback type.

While the agent is dialed the caller stays with the bot:
:class:`callpipe.extensions.warm_transfer.WarmTransferProcessor` runs a sequence with a hold
prompt and hold music (the output transport's mixer), and brings the bot back if it fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["bridged", "agent-unavailable"]


@dataclass(frozen=True, slots=True)
class WarmTransferResult:
    outcome: Outcome
    agent_call_id: str
    room: str = ""
    agent_status: str = ""


WaitFor = Callable[[str, str], Awaitable[bool]]
"""``wait_for(call_control_id, event_type)``: True once your webhooks saw that event."""
