"""Outbound calls: place a call through a provider's REST API and follow what happens to it."""

from callpipe.telephony.dial.client import dial, place_call
from callpipe.telephony.dial.providers import DIAL_PROVIDERS, ProviderAccount, build_create_call
from callpipe.telephony.dial.types import (
    AmdResult,
    CallHandle,
    DialRequest,
    DialStatus,
    normalize_amd,
    status_of,
)

__all__ = [
    "DIAL_PROVIDERS",
    "AmdResult",
    "CallHandle",
    "DialRequest",
    "DialStatus",
    "ProviderAccount",
    "build_create_call",
    "dial",
    "normalize_amd",
    "place_call",
    "status_of",
]
