"""The providers callpipe speaks, in one list: add a provider here and nowhere else.

The runner, the simulator and the CLI take every provider-specific decision through this
registry (see :mod:`callpipe.providers.base`); nothing outside a provider's own modules compares
provider names (``tests/unit/test_provider_names.py`` keeps it so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from callpipe.providers.asterisk import ASTERISK
from callpipe.providers.bandwidth import BANDWIDTH
from callpipe.providers.base import CallData, Provider
from callpipe.providers.exotel import EXOTEL
from callpipe.providers.genesys import GENESYS
from callpipe.providers.jambonz import JAMBONZ
from callpipe.providers.plivo import PLIVO
from callpipe.providers.signalwire import SIGNALWIRE
from callpipe.providers.telnyx import TELNYX
from callpipe.providers.twilio import TWILIO
from callpipe.providers.vonage import VONAGE
from callpipe.telephony.dial.types import Dialer, register_dialer

PROVIDERS: tuple[Provider, ...] = (
    TWILIO,
    TELNYX,
    PLIVO,
    EXOTEL,
    VONAGE,
    SIGNALWIRE,
    BANDWIDTH,
    JAMBONZ,
    GENESYS,
    ASTERISK,
)
"""In the order the CLI and messages list them."""

_BY_NAME: dict[str, Provider] = {p.name: p for p in PROVIDERS}
_DETECTION_ORDER: tuple[Provider, ...] = tuple(sorted(PROVIDERS, key=lambda p: p.detect_rank))
_DIALERS: tuple[Dialer, ...] = tuple(p.dialer for p in PROVIDERS if p.dialer is not None)
for _dialer in _DIALERS:
    # So ``callpipe.telephony.dial.dial(provider="name")`` finds it (telephony cannot import us).
    register_dialer(_dialer)


def names() -> tuple[str, ...]:
    """Every provider's ``-t`` name."""
    return tuple(_BY_NAME)


def get(name: str | None) -> Provider | None:
    """The provider called ``name``; None for anything else (``websocket``, None, unknown)."""
    return _BY_NAME.get(name) if name else None


def require(name: str) -> Provider:
    """The provider called ``name``; ``KeyError`` naming the known ones otherwise."""
    provider = get(name)
    if provider is None:
        raise KeyError(f"unknown provider {name!r}; choose one of {', '.join(_BY_NAME)}")
    return provider


def dialers() -> tuple[Dialer, ...]:
    """The dialers of the providers callpipe can place outbound calls through."""
    return _DIALERS


def dialer(name: str | None) -> Dialer | None:
    """The dialer of the provider called ``name``; None if unknown or it cannot dial."""
    provider = get(name)
    return provider.dialer if provider is not None else None


def detect_stream(message: Mapping[str, Any]) -> tuple[Provider, CallData] | None:
    """The provider whose stream start ``message`` is, with its call data; None if none."""
    for provider in _DETECTION_ORDER:
        call_data = provider.detect_stream(message)
        if call_data is not None:
            return provider, call_data
    return None


def parse_text(text: str) -> Mapping[str, Any] | None:
    """A non-JSON text handshake message, parsed by the provider whose syntax it is; or None."""
    for provider in _DETECTION_ORDER:
        message = provider.parse_text(text)
        if message is not None:
            return message
    return None


def detect_webhook(headers: Mapping[str, str], fields: Mapping[str, str]) -> Provider | None:
    """Local mode only: the provider an (unverified) webhook looks like.

    A signature header names its provider best; otherwise the form fields only it sends.
    """
    for provider in _DETECTION_ORDER:
        if any(h in headers for h in provider.signature_headers[:1]):
            return provider
    for provider in _DETECTION_ORDER:
        if provider.matches_webhook(fields):
            return provider
    return None


def claimed_upgrade(headers: Mapping[str, str]) -> Provider | None:
    """The provider whose own headers authenticate this WebSocket upgrade (no stream token)."""
    for provider in _DETECTION_ORDER:
        if provider.claims_upgrade(headers):
            return provider
    return None


def webhook_secrets() -> dict[str, tuple[str, ...]]:
    """Provider name -> the environment variables that configure its verification: webhook
    signatures, or stream upgrades for a provider that has no webhooks (Genesys)."""
    found = {p.name: p.webhook_secret_env + p.stream_secret_env for p in PROVIDERS}
    return {name: env for name, env in found.items() if env}


def subprotocol_for(requested: Iterable[str]) -> str | None:
    """The first WebSocket subprotocol a client asked for that a provider speaks, or None."""
    offered = list(requested)
    for provider in PROVIDERS:
        for name in provider.subprotocols:
            if name in offered:
                return name
    return None
