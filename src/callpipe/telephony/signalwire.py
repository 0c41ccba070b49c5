"""SignalWire call control through its Compatibility (LaML/cXML) REST API.

The API is Twilio's Calls resource under the project's own Space host:
``https://{space}.signalwire.com/api/laml/2010-04-01/Accounts/{project_id}/Calls/{call_sid}.json``,
Basic auth with the project id and an API token. Hang-up, transfer and "already ended" behave as
:class:`~callpipe.telephony.twilio.TwilioCallControl`, which this reuses with that root.
"""

from __future__ import annotations

import re

import httpx

from callpipe.errors import ConfigurationError
from callpipe.telephony.base import RetryPolicy
from callpipe.telephony.twilio import TwilioCallControl

_SPACE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def signalwire_api_root(space: str | None = None, base_url: str | None = None) -> str:
    """The Compatibility API root: ``base_url`` if given, else ``https://{space}.signalwire.com
    /api/laml``. ``space`` is the Space name, or its host (``example.signalwire.com``)."""
    if base_url:
        return base_url.rstrip("/")
    name = (space or "").strip().lower()
    for prefix in ("https://", "http://"):
        name = name.removeprefix(prefix)
    name = name.rstrip("/").removesuffix(".signalwire.com")
    if not _SPACE.match(name):
        raise ConfigurationError(
            f"invalid SignalWire space {space!r}: give the Space name (example) or its host "
            "(example.signalwire.com)"
        )
    return f"https://{name}.signalwire.com/api/laml"


class SignalWireCallControl(TwilioCallControl):
    """Call control for one SignalWire call (a UUID call SID) of one project."""

    provider = "signalwire"

    def __init__(
        self,
        *,
        project_id: str,
        call_sid: str,
        api_token: str,
        space: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            account_sid=project_id,
            call_sid=call_sid,
            auth_token=api_token,
            base_url=signalwire_api_root(space, base_url),
            retry=retry,
            transport=transport,
        )
