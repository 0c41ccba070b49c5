"""What callpipe knows about one telephony provider, as one typed object.

A :class:`Provider` holds every provider-specific decision the runner, the simulator and the CLI
need: how its answer webhook is recognised and verified, the answer and busy documents, how its
media WebSocket handshake becomes :class:`CallData`, which serializer (with which credentials)
speaks its wire format, its simulator dialect, and the setup hint the runner prints. Those callers
loop over :mod:`callpipe.providers.registry` and never compare provider names themselves, so a
new provider is one new package plus one registry line.

Sans-I/O: nothing here reads sockets or the process environment; the runner passes the request,
the handshake message and an environment mapping in.
"""

from __future__ import annotations

import hmac
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from callpipe.providers.dialect import Dialect
    from callpipe.serializers.base_serializer import FrameSerializer
    from callpipe.telephony.dial.types import Dialer

XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


def safe_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two strings of any characters (never raises)."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


class CallData(BaseModel):
    """Call identifiers read from the provider's first WebSocket messages.

    Dict-compatible for bots written against plain dicts: ``cd["call_id"]`` raises ``KeyError``
    when the key is unset, ``"from" in cd`` is true only when set and not None, and
    ``cd.get(key, default)`` returns the default for a None value too. ``from``/``to`` are the wire
    names of ``from_number``/``to_number``.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    stream_id: str | None = None
    call_id: str | None = None
    from_number: str | None = Field(default=None, alias="from")
    to_number: str | None = Field(default=None, alias="to")
    body: dict[str, Any] = Field(default_factory=dict)

    def _as_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)

    def __getitem__(self, key: str) -> Any:
        data = self._as_wire()
        if key not in data:
            raise KeyError(key)
        return data[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._as_wire().get(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self._as_wire().get(key)
        return default if value is None else value

    def keys(self) -> list[str]:
        return list(self._as_wire().keys())

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.keys())


def numbers(from_number: Any, to_number: Any) -> dict[str, Any]:
    """``from``/``to`` by their wire names (the model's aliases)."""
    return {"from": from_number, "to": to_number}


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping (copied), else an empty dict: hostile shapes read as empty."""
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class Answer:
    """A document the answer webhook returns."""

    body: str
    media_type: str
    status_code: int = 200


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    """What an answer document says: the stream URL (token inside) and the call's identifiers."""

    url: str
    from_number: str = ""
    to_number: str = ""
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class SignedWebhook:
    """An answer webhook as the provider signed it.

    ``url`` is the public URL (from ``-x``, never from request headers); ``headers`` look up
    case-insensitively; ``form`` holds the form fields of a form-encoded POST (else empty).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    form: list[tuple[str, str]] = field(default_factory=list)
    is_form: bool = True


@runtime_checkable
class WebhookVerifier(Protocol):
    """One provider's configured webhook check (built once per process from its secrets)."""

    def verify(self, request: SignedWebhook) -> bool:
        """True only for a genuine webhook; never raises on hostile input."""
        ...


class TimedSecretVerifier(ABC):
    """A :class:`WebhookVerifier` keyed with one shared secret whose signatures carry a time.

    Holds what every such check needs: the secret, how old a signature may be
    (``default_tolerance`` unless given) and the clock (injectable, so tests can sign "now").
    :meth:`from_secret` is the provider's ``webhook_verifier``: no secret configured, no check.
    """

    default_tolerance: ClassVar[float] = 300.0

    def __init__(
        self,
        secret: str,
        *,
        tolerance: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._tolerance = self.default_tolerance if tolerance is None else tolerance
        self._clock = clock

    @classmethod
    def from_secret(cls, secret: str | None) -> Self | None:
        """The verifier for a configured (non-empty) secret, else None."""
        return cls(secret) if secret else None

    @abstractmethod
    def verify(self, request: SignedWebhook) -> bool:
        """True only for a genuine webhook signed within the tolerance; never raises."""


@dataclass(frozen=True, slots=True)
class SignedUpgrade:
    """A media WebSocket's upgrade request, for providers that authenticate the stream itself
    (no answer webhook, so no stream token): headers look up case-insensitively; ``target`` is
    the request target (path and ``?query``), ``authority`` the ``Host``."""

    headers: Mapping[str, str]
    target: str
    authority: str


@runtime_checkable
class StreamVerifier(Protocol):
    """One provider's configured check of its media WebSocket upgrades."""

    def refusal(self, request: SignedUpgrade) -> str | None:
        """Why the upgrade is refused (short, no secrets), or None if it is genuine; never
        raises on hostile input."""
        ...


NoHangUp = Callable[[type[Any], bool, str], Any]
"""The runner's policy for missing REST credentials: ``(serializer class, has credentials,
env names) -> InputParams or None`` (None: the serializer's defaults, hang-up on)."""


class Provider(Protocol):
    """Everything callpipe knows about one telephony provider (see the module docstring)."""

    @property
    def name(self) -> str:
        """The ``-t`` name and ``runner_args.transport_type``."""
        ...

    @property
    def signature_headers(self) -> tuple[str, ...]:
        """Headers its webhooks are signed with; the first one identifies it."""
        ...

    @property
    def webhook_secret_env(self) -> tuple[str, ...]:
        """Environment variables that configure its webhook verification (empty: it signs none)."""
        ...

    @property
    def stream_secret_env(self) -> tuple[str, ...]:
        """Environment variables that configure its stream-upgrade check (a provider without
        webhooks, e.g. Genesys; empty otherwise)."""
        ...

    @property
    def binds_call_id(self) -> bool:
        """Its stream handshake echoes the webhook's call id, so the stream token can bind it."""
        ...

    @property
    def detect_rank(self) -> int:
        """Detection order: lower first (a Twilio-compatible provider must precede Twilio)."""
        ...

    @property
    def setup_hint(self) -> str:
        """Where the provider's console takes the answer URL (the runner prints it)."""
        ...

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """WebSocket subprotocols its media stream asks for (the runner accepts with one)."""
        ...

    @property
    def auth_challenge(self) -> str | None:
        """The ``WWW-Authenticate`` challenge a webhook without its credentials is answered with
        (401), for a provider that sends HTTP Basic credentials only once challenged (RFC 7235:
        Bandwidth); None: such a webhook is refused (403)."""
        ...

    @property
    def stream_auth(self) -> bool:
        """Its media stream may authenticate with its webhook credentials (HTTP auth on the
        upgrade, checked by its webhook verifier) instead of a stream token."""
        ...

    @property
    def dialect(self) -> type[Dialect]:
        """The call simulator's side of its media WebSocket."""
        ...

    @property
    def dialer(self) -> Dialer | None:
        """Its outbound dialing (create-call request, callback words); None if callpipe cannot
        dial through it."""
        ...

    def webhook_verifier(self, secrets: Mapping[str, str]) -> WebhookVerifier | None:
        """Its verifier from the configured secrets (env names -> values); None if unset."""
        ...

    def claims_upgrade(self, headers: Mapping[str, str]) -> bool:
        """Is this WebSocket upgrade its media stream, authenticated by its own headers (a
        provider that connects without an answer webhook, hence without a stream token)?"""
        ...

    def stream_verifier(self, secrets: Mapping[str, str]) -> StreamVerifier | None:
        """Its upgrade check from the configured secrets; None if unset (then its claimed
        upgrades are refused outside local mode)."""
        ...

    def setup_url(self, host: str) -> str:
        """The URL to configure in its console (the answer webhook, or the stream itself)."""
        ...

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        """Local mode only: does this unsigned webhook look like one of its webhooks?"""
        ...

    def webhook_call_id(self, fields: Mapping[str, str]) -> str:
        """The call id its answer webhook carries ("" if none)."""
        ...

    def answer(self, request: AnswerRequest) -> Answer:
        """The document that connects the call to ``request.url``."""
        ...

    def busy(self, reason: str) -> Answer:
        """The document that rejects the call (at capacity or draining)."""
        ...

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        """Its stream start as call data, or None when ``message`` is not one."""
        ...

    def parse_text(self, text: str) -> Mapping[str, Any] | None:
        """A non-JSON text handshake message in its own syntax, as a mapping for
        :meth:`detect_stream`; None when ``text`` is not one (JSON-only providers)."""
        ...

    def stream_parameters(self, call_data: CallData) -> dict[str, Any]:
        """Parameters the answer document asked it to echo (where the stream token may ride)."""
        ...

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        """Its serializer for this call; REST credentials from ``env``."""
        ...


class BaseProvider:
    """Defaults for a :class:`Provider`: unsigned webhooks, JSON busy answer, no call binding,
    no outbound dialing, streams admitted by the runner's token (none claimed by headers)."""

    name: ClassVar[str]
    signature_headers: ClassVar[tuple[str, ...]] = ()
    webhook_secret_env: ClassVar[tuple[str, ...]] = ()
    stream_secret_env: ClassVar[tuple[str, ...]] = ()
    binds_call_id: ClassVar[bool] = False
    detect_rank: ClassVar[int] = 0
    setup_hint: ClassVar[str] = ""
    subprotocols: ClassVar[tuple[str, ...]] = ()
    stream_auth: ClassVar[bool] = False
    auth_challenge: ClassVar[str | None] = None
    dialer: ClassVar[Dialer | None] = None

    def webhook_verifier(self, secrets: Mapping[str, str]) -> WebhookVerifier | None:
        return None

    def claims_upgrade(self, headers: Mapping[str, str]) -> bool:
        return False

    def stream_verifier(self, secrets: Mapping[str, str]) -> StreamVerifier | None:
        return None

    def setup_url(self, host: str) -> str:
        return f"https://{host}/"

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        return False

    def webhook_call_id(self, fields: Mapping[str, str]) -> str:
        return fields.get("CallSid", "")

    def busy(self, reason: str) -> Answer:
        return Answer(json.dumps({"error": "busy", "reason": reason}), "application/json", 503)

    def stream_parameters(self, call_data: CallData) -> dict[str, Any]:
        return dict(call_data.body)

    def parse_text(self, text: str) -> Mapping[str, Any] | None:
        return None

    def __repr__(self) -> str:
        return f"<provider {self.name}>"


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """A set, non-empty environment value, else None."""
    return env.get(name) or None
