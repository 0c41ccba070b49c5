"""Provider dialects: what each telephony provider sends on its media WebSocket, and how it
reads what the bot sends back.

Each dialect lives with its provider (``callpipe.providers.<name>.dialect``); the simulator finds
them through the provider registry, so a new provider's dialect needs no change here. A dialect is
sans-I/O: it builds the provider's messages (handshake, media, DTMF, mark/checkpoint
acknowledgements, stop) from plain values and parses the bot's messages into
:class:`ServerEvent`, following each provider's published media-stream documentation (sequence
numbers, chunk counters, timestamps included).
"""

from __future__ import annotations

from callpipe.errors import ConfigurationError
from callpipe.providers import registry
from callpipe.providers.dialect import CallIdentity, Dialect, EventKind, ServerEvent
from callpipe.providers.exotel.dialect import ExotelDialect
from callpipe.providers.plivo.dialect import PlivoDialect
from callpipe.providers.telnyx.dialect import TelnyxDialect
from callpipe.providers.twilio.dialect import TwilioDialect
from callpipe.providers.vonage.dialect import VonageDialect

__all__ = [
    "DIALECTS",
    "CallIdentity",
    "Dialect",
    "EventKind",
    "ExotelDialect",
    "PlivoDialect",
    "ServerEvent",
    "TelnyxDialect",
    "TwilioDialect",
    "VonageDialect",
    "make_dialect",
]

DIALECTS: dict[str, type[Dialect]] = {p.name: p.dialect for p in registry.PROVIDERS}
"""Every provider's dialect by provider name (from the registry)."""


def make_dialect(provider: str, identity: CallIdentity | None = None) -> Dialect:
    """The dialect for ``provider`` (any name in :data:`DIALECTS`)."""
    try:
        cls = DIALECTS[provider.lower()]
    except KeyError:
        raise ConfigurationError(
            f"unknown provider {provider!r}; choose one of {', '.join(DIALECTS)}"
        ) from None
    return cls(identity)
