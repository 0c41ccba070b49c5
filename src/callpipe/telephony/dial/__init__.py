"""Outbound calls: place a call through a provider's REST API and follow what happens to it.

Each provider's side (its request, auth and callback words) is a :class:`Dialer` in its own
package, ``callpipe.providers.<name>.dial``, reached as ``Provider.dialer`` through the registry.
"""

from callpipe.telephony.dial.client import build_create_call, dial, place_call
from callpipe.telephony.dial.types import (
    AmdResult,
    CallHandle,
    Dialer,
    DialRequest,
    DialStatus,
    ProviderAccount,
    normalize_amd,
    status_of,
)

__all__ = [
    "AmdResult",
    "CallHandle",
    "DialRequest",
    "DialStatus",
    "Dialer",
    "ProviderAccount",
    "build_create_call",
    "dial",
    "normalize_amd",
    "place_call",
    "status_of",
]
