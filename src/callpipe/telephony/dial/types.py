"""What a dial asks for and what it returns, and the one vocabulary of call outcomes.

Each provider reports progress and answering-machine verdicts in its own words; its
:class:`Dialer` (in its provider package) maps them to the one small vocabulary here (sans-I/O),
which the runner's callback route, the campaign runner and the tests share.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlencode

from callpipe.audio.amd import AmdResult as AmdResult
from callpipe.errors import ConfigurationError

if TYPE_CHECKING:
    import httpx

DialStatus = Literal[
    "initiated", "ringing", "answered", "busy", "no-answer", "failed", "canceled", "completed"
]
"""Where an outbound call is: the terminal ones are busy, no-answer, failed, canceled, completed."""

TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"busy", "no-answer", "failed", "canceled", "completed"}
)


AMD_RESULTS: frozenset[str] = frozenset(
    {"human", "machine_start", "machine_end_beep", "machine_end_silence", "fax", "unknown"}
)

MachineDetection = Literal["off", "enable", "detect_end"]
"""``enable``: a verdict as soon as known; ``detect_end``: wait for the greeting's end (beep)."""


@dataclass(frozen=True, slots=True)
class DialRequest:
    """One outbound call to place.

    ``answer_url`` is where the provider fetches its call instructions once the callee answers
    (the runner's ``POST /``); Twilio also takes inline ``twiml`` instead. ``status_url`` and
    ``amd_url`` receive progress and AMD callbacks (the runner's ``/calls/status``).
    ``metadata`` never leaves this process: the runner hands it to the bot in ``runner_args``.
    """

    to: str
    from_: str
    answer_url: str | None = None
    twiml: str | None = None
    status_url: str | None = None
    amd_url: str | None = None
    machine_detection: MachineDetection = "off"
    async_amd: bool = True
    ring_timeout: int = 30
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CallHandle:
    """A placed call: the provider's id for it, and what is known of it so far."""

    provider: str
    call_id: str
    dial_id: str
    to: str
    status: DialStatus = "initiated"
    answered_by: AmdResult | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)
    """``(kind, value)`` pairs in arrival order: ``("status", "ringing")``, ``("amd", "human")``."""

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return {
            "dial_id": self.dial_id,
            "provider": self.provider,
            "call_id": self.call_id,
            "status": self.status,
            "answered_by": self.answered_by,
        }


_STATUS_WORDS: dict[str, DialStatus] = {
    # Twilio / Telnyx TeXML CallStatus, Plivo CallStatus, Vonage status, Exotel Status.
    "queued": "initiated",
    "initiated": "initiated",
    "started": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    "answered": "answered",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "timeout": "no-answer",
    "unanswered": "no-answer",
    "failed": "failed",
    "rejected": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "cancel": "canceled",
}


def normalize_status(value: str) -> DialStatus | None:
    """A provider's call-status word in the shared vocabulary (None: not a status we track)."""
    return _STATUS_WORDS.get(value.strip().lower())


ANSWERED_BY: dict[str, AmdResult] = {
    "human": "human",
    "machine_start": "machine_start",
    "machine_end_beep": "machine_end_beep",
    "machine_end_silence": "machine_end_silence",
    "machine_end_other": "machine_end_silence",
    "fax": "fax",
    "unknown": "unknown",
}
"""The ``AnsweredBy`` words of Twilio-style AMD callbacks (the verdict names callpipe uses)."""


@dataclass(frozen=True, slots=True)
class CreateCall:
    """One HTTP request: method, path under the provider's host, httpx keyword arguments.

    ``auth`` is Basic credentials, or an ``httpx.Auth`` for a provider whose bearer token is
    itself fetched over HTTP (Bandwidth's OAuth 2.0 client credentials): the request stays a
    value, the token request happens when it is sent."""

    method: str
    path: str
    kwargs: dict[str, Any]
    auth: tuple[str, str] | httpx.Auth | None = None
    headers: dict[str, str] = field(default_factory=dict)


def form_body(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """httpx keyword arguments for a form body with repeated keys (``data=`` takes a dict)."""
    return {
        "content": urlencode(pairs).encode("ascii"),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    """The credentials one provider's dial needs (see :meth:`from_env` for the variable names)."""

    provider: str
    values: Mapping[str, str]
    bearer: Callable[[], str] | None = None
    """A fresh bearer token per request, for providers that sign one (Vonage's JWT); a dialer
    that needs one builds it from ``values`` when this is None."""

    def need(self, name: str) -> str:
        value = self.values.get(name)
        if not value:
            raise ConfigurationError(f"dialing with {self.provider} needs {name}")
        return value

    @classmethod
    def from_env(cls, provider: str, env: Mapping[str, str] | None = None) -> ProviderAccount:
        """Read ``provider``'s credentials: every ``<PROVIDER>_*`` variable, prefix dropped.

        Twilio ``TWILIO_ACCOUNT_SID`` + ``TWILIO_AUTH_TOKEN`` (or ``TWILIO_API_KEY_SID`` +
        ``TWILIO_API_KEY_SECRET``); Telnyx ``TELNYX_API_KEY``, ``TELNYX_ACCOUNT_SID``,
        ``TELNYX_APPLICATION_SID``; Plivo ``PLIVO_AUTH_ID`` + ``PLIVO_AUTH_TOKEN``; Vonage
        ``VONAGE_APPLICATION_ID`` + ``VONAGE_PRIVATE_KEY`` (PEM text or a file path); Exotel
        ``EXOTEL_API_KEY``, ``EXOTEL_API_TOKEN``, ``EXOTEL_ACCOUNT_SID``; Bandwidth
        ``BANDWIDTH_ACCOUNT_ID``, ``BANDWIDTH_APPLICATION_ID`` and ``BANDWIDTH_CLIENT_ID`` +
        ``BANDWIDTH_CLIENT_SECRET`` (or an API user's ``BANDWIDTH_USERNAME`` +
        ``BANDWIDTH_PASSWORD``), ``BANDWIDTH_CALLBACK_AUTH`` for authenticated callbacks.
        """
        env = os.environ if env is None else env
        prefix = provider.upper() + "_"
        values = {k[len(prefix) :]: v for k, v in env.items() if k.startswith(prefix) and v}
        return cls(provider, values)


class Dialer(Protocol):
    """One provider's outbound dialing: its create-call request and its callbacks' words.

    Each provider package implements one (``callpipe.providers.<name>.dial``) and exposes it as
    ``Provider.dialer``; the client and the runner use it and never compare provider names.
    Sans-I/O: building the request and reading answers and callbacks do no I/O.
    """

    @property
    def name(self) -> str:
        """The provider's name (``CallHandle.provider``, the metrics label)."""
        ...

    @property
    def host(self) -> str:
        """The REST root create-call requests go to (tests pass a local one instead)."""
        ...

    @property
    def flow_url_hint(self) -> str | None:
        """None: the answer URL is the runner. Otherwise the dial must name the provider's own
        call flow as ``answer_url`` (it cannot fetch the runner directly), and this says so."""
        ...

    def create_call(self, account: ProviderAccount, req: DialRequest) -> CreateCall:
        """The create-call request for ``req`` (raises ``ConfigurationError``)."""
        ...

    def answer_call_id(self, body: Any) -> str:
        """The created call's id in the create-call JSON answer ("" if absent)."""
        ...

    def callback_call_id(self, fields: Mapping[str, Any]) -> str:
        """The call id in a status/AMD callback or the answer webhook ("" if absent)."""
        ...

    def callback_status(self, fields: Mapping[str, Any]) -> DialStatus | None:
        """The call status a callback carries, if any."""
        ...

    def callback_amd(self, fields: Mapping[str, Any]) -> AmdResult | None:
        """The answering-machine verdict a callback carries, if any."""
        ...


def answered_by(fields: Mapping[str, Any]) -> AmdResult | None:
    """A Twilio-style ``AnsweredBy`` verdict (unknown words read as ``unknown``)."""
    value = fields.get("AnsweredBy")
    if isinstance(value, str) and value:
        return ANSWERED_BY.get(value.strip().lower(), "unknown")
    return None


def field_status(fields: Mapping[str, Any], name: str) -> DialStatus | None:
    """The status word in ``fields[name]`` in the shared vocabulary."""
    word = fields.get(name)
    return normalize_status(word) if isinstance(word, str) else None


_DIALERS: dict[str, Dialer] = {}


def register_dialer(dialer: Dialer) -> None:
    """Make ``dialer`` reachable by name (``callpipe.providers.registry`` registers each one)."""
    _DIALERS[dialer.name] = dialer


def dialer_for(provider: str | Dialer) -> Dialer:
    """The dialer itself, or the registered one called ``provider`` (``ConfigurationError``)."""
    if not isinstance(provider, str):
        return provider
    dialer = _DIALERS.get(provider)
    if dialer is None:
        if not _DIALERS:
            raise ConfigurationError(
                f"unknown dial provider {provider!r}: no dialer registered yet "
                "(import callpipe.providers.registry, or pass registry.require(name).dialer)"
            )
        known = ", ".join(_DIALERS)
        raise ConfigurationError(f"unknown dial provider {provider!r}: use one of {known}")
    return dialer


def normalize_amd(provider: str | Dialer, fields: Mapping[str, Any]) -> AmdResult | None:
    """The AMD verdict a provider callback carries, if any."""
    return dialer_for(provider).callback_amd(fields)


def status_of(provider: str | Dialer, fields: Mapping[str, Any]) -> DialStatus | None:
    """The call status a provider callback carries, if any."""
    return dialer_for(provider).callback_status(fields)


def call_id_of(provider: str | Dialer, fields: Mapping[str, Any]) -> str:
    """The provider call id in a callback or answer webhook (what ``CallHandle.call_id`` holds)."""
    return dialer_for(provider).callback_call_id(fields)
