"""One warm transfer per provider against the REST fake, with the tests' usual parties.

Caller CAcaller / caller-1 goes to agent +15550001111 from +15557654321; tests vary only the
summary, the agent's answer and the provider's extra options.
"""

from __future__ import annotations

from typing import Any

from callpipe.providers.telnyx.warm_transfer import telnyx_warm_transfer
from callpipe.providers.twilio.warm_transfer import twilio_warm_transfer
from callpipe.telephony.dial import ProviderAccount
from callpipe.telephony.dial.warm_transfer import WaitFor, WarmTransferResult

from ._server import ProviderServer

ACCOUNT = ProviderAccount.from_env(
    "twilio", {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok"}
)


async def answered(call_id: str, event: str) -> bool:
    return True


async def twilio_transfer(
    server: ProviderServer, summary: str = "x", **kwargs: Any
) -> WarmTransferResult:
    """Twilio's warm transfer of caller CAcaller to +15550001111, against the fake."""
    return await twilio_warm_transfer(
        ACCOUNT,
        "CAcaller",
        "+15550001111",
        from_="+15557654321",
        summary=summary,
        poll=0.01,
        base_url=server.url,
        **kwargs,
    )


async def telnyx_transfer(
    server: ProviderServer, summary: str = "x", wait_for: WaitFor = answered
) -> WarmTransferResult:
    """Telnyx's warm transfer of caller caller-1 to +15550001111, against the fake."""
    return await telnyx_warm_transfer(
        api_key="KEY",
        connection_id="conn-1",
        caller_call_control_id="caller-1",
        agent="+15550001111",
        from_="+15557654321",
        summary=summary,
        wait_for=wait_for,
        base_url=server.url,
    )
