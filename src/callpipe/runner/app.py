"""The runner's FastAPI app: provider webhooks, the media WebSocket, health, readiness, metrics.

Routes: ``GET|POST /`` answer webhook (``-t`` provider, or detected from the request),
``WS /ws`` and ``/ws/{token}`` media stream → ``bot(WebSocketRunnerArguments)``, ``POST /start``
(plain WebSocket clients: URL + token), ``GET /health`` (liveness), ``GET /ready`` (readiness:
503 while draining or at capacity), ``GET /metrics`` (Prometheus text), ``GET /status``,
``GET /phone`` (the softphone page: a browser playing the provider's part), ``GET /calls`` (the
call inspector, with records on: see ``callpipe.runner.inspector``).

Refusals: a stream beyond ``--max-calls`` or during drain is denied before the upgrade with HTTP
503 + ``Retry-After`` (a load balancer retries another instance); a forged, expired or reused
token in the URL (or a foreign ``Origin`` in local mode) with HTTP 403 before the upgrade (see
``callpipe.runner.admission``); after accept, close 4003 means bad/missing/used token, 1002
no usable provider handshake and 1011 that ``bot()`` raised (the reason says what, see
:func:`bot_failure_reason`). ``POST /`` answers the provider's
busy document at capacity (200) and while draining (503, so a balancer or the provider's fallback
URL can place the call elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.requests import ClientDisconnect
from starlette.websockets import WebSocketDisconnect, WebSocketState

from callpipe.errors import ConfigurationError, OriginNotAllowedError, ProtocolError
from callpipe.log import mask
from callpipe.metrics.registry import REGISTRY, render_prometheus_text
from callpipe.pipeline.turn_log import TURN_EVENTS
from callpipe.providers import registry
from callpipe.providers.base import SignedUpgrade, SignedWebhook, StreamVerifier, WebhookVerifier
from callpipe.runner.admission import TokenClaims, bearer_token, origin_allowed, plausible_token
from callpipe.runner.calls import CALLS_REFUSED, HANDSHAKE_SECONDS, ActiveCall, CallRegistry
from callpipe.runner.dial_store import dial_store_from_url
from callpipe.runner.dials import DialBook
from callpipe.runner.http_guard import (
    API_KEY_ENV,
    api_key_refusal,
    client_gone,
    remove_api_docs,
)
from callpipe.runner.inspector import add_call_inspector
from callpipe.runner.outbound import add_outbound_routes
from callpipe.runner.preload import preload_models
from callpipe.runner.record_webhook import RecordWebhook
from callpipe.runner.records import RecordsConfig, RecordStore
from callpipe.runner.redaction import install_token_redaction
from callpipe.runner.security import (
    StreamTokens,
    TokenError,
    stream_secret_from_env,
)
from callpipe.runner.softphone import PhoneEvents, add_phone_events
from callpipe.runner.token_store import REDIS_URL_ENV, token_store_from_url
from callpipe.runner.tracing import enabled_by_env, trace_exporter
from callpipe.runner.types import TELEPHONY_PROVIDERS, WebSocketRunnerArguments
from callpipe.runner.utils import HANDSHAKE_TIMEOUT_SECS, parse_telephony_websocket
from callpipe.runner.webhook import handle_answer
from callpipe.utils.heap import freeze_startup_heap
from callpipe.utils.security.allowed_origins import is_origin_allowed

logger = logging.getLogger(__name__)

BotFunc = Callable[[Any], Awaitable[Any]]

_PHONE_PAGE = Path(__file__).with_name("static") / "phone.html"
"""Served at ``GET /phone`` (see callpipe.demo)."""

BOT_FAILED_CODE = 1011
"""Close code when ``bot()`` raised: the caller's side sees it with :func:`bot_failure_reason`."""


def bot_failure_reason(exc: BaseException) -> str:
    """The close reason for a failed ``bot()`` (at most 123 bytes, as WebSocket allows).

    Our own configuration errors carry their message (it names the missing parameter, never a
    value); any other exception only its type, since its text may hold anything.
    """
    detail = f": {exc}" if isinstance(exc, ConfigurationError) else ""
    reason = f"bot failed: {type(exc).__name__}{detail}"
    return reason.encode()[:123].decode("utf-8", "ignore")


TOKEN_PARAM = "callpipe_token"
"""Name of the token when carried as a stream parameter or query parameter."""


@dataclass
class RunnerConfig:
    """Everything the app needs; built by ``main()`` from the CLI, or directly in tests."""

    transport: str | None = None
    proxy: str | None = None
    host: str = "localhost"
    port: int = 7860
    insecure: bool = False
    max_calls: int | None = None
    drain_timeout: float = 30.0
    end_grace: float = 10.0
    handshake_timeout: float = HANDSHAKE_TIMEOUT_SECS
    token_ttl: float = 30.0
    redis_url: str | None = None
    """Fleet-wide token and dial records (``--redis-url``, ``CALLPIPE_REDIS_URL``); None: per
    process."""
    body: dict[str, Any] = field(default_factory=dict)
    cli_args: argparse.Namespace | None = None
    records_dir: str | None = None
    """Where call records (and recordings) are written (``--records``, ``CALLPIPE_RECORDS_DIR``)."""
    records: bool | None = None
    """Keep call records; None: on in local mode or with a records directory."""
    recording: bool | None = None
    """Also record each call's audio (``--recording``, ``CALLPIPE_RECORDING=1``)."""
    audiosocket_port: int | None = None
    """Take Asterisk AudioSocket calls on this TCP port (``--audiosocket-port``); None: off."""
    audiosocket_host: str = "127.0.0.1"
    """Bind address of the AudioSocket listener: it has no authentication, keep it private."""
    allowed_origins: list[str] = field(default_factory=list)
    """Browser origins that may open a stream (``--allowed-origins``, default
    ``CALLPIPE_ALLOWED_ORIGINS`` / ``PIPECAT_ALLOWED_ORIGINS``), in every mode. A stream with no
    ``Origin`` (a provider) is never refused for it; in local mode the server's own pages stay
    allowed too."""


_NAMED_SECRETS = frozenset(
    ("TWILIO_AUTH_TOKEN", "TWILIO_WEBHOOK_SHARED_KEY", "TELNYX_PUBLIC_KEY", "PLIVO_AUTH_TOKEN")
)


@dataclass
class Credentials:
    """Provider secrets for webhook signatures (from the environment by default)."""

    twilio_auth_token: str | None = None
    telnyx_public_key: str | None = None
    plivo_auth_token: str | None = None
    twilio_shared_keys: tuple[str, ...] = ()
    """Twilio webhook SharedKey secrets (``TWILIO_WEBHOOK_SHARED_KEY``, comma-separated to
    rotate): used when a webhook carries ``X-Twilio-Webhooks-Signature-Settings``."""
    api_key: str | None = None
    """``CALLPIPE_API_KEY``: bearer key for ``POST /start`` (and ``/metrics``/``/status``)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Other providers' webhook secrets by environment variable name (e.g. a new provider's
    signing key): providers added later need no field here."""

    @classmethod
    def from_env(cls) -> Credentials:
        import os

        shared = os.environ.get("TWILIO_WEBHOOK_SHARED_KEY") or ""
        return cls(
            twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or None,
            telnyx_public_key=os.environ.get("TELNYX_PUBLIC_KEY") or None,
            plivo_auth_token=os.environ.get("PLIVO_AUTH_TOKEN") or None,
            twilio_shared_keys=tuple(k.strip() for k in shared.split(",") if k.strip()),
            api_key=os.environ.get(API_KEY_ENV) or None,
            extra={
                name: os.environ[name]
                for names in registry.webhook_secrets().values()
                for name in names
                if name not in _NAMED_SECRETS and os.environ.get(name)
            },
        )

    def secrets(self) -> dict[str, str]:
        """Every configured webhook secret by its environment variable name (for the providers)."""
        named = {
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
            "TWILIO_WEBHOOK_SHARED_KEY": ",".join(self.twilio_shared_keys),
            "TELNYX_PUBLIC_KEY": self.telnyx_public_key,
            "PLIVO_AUTH_TOKEN": self.plivo_auth_token,
        }
        return {**{k: v for k, v in named.items() if v}, **self.extra}


class RunnerState:
    """Per-process state: tokens, verifiers, the call registry. Kept on ``app.state.runner``
    for the routes; the server finds it with :func:`runner_state`."""

    def __init__(
        self,
        bot: BotFunc,
        config: RunnerConfig,
        credentials: Credentials,
        secret: bytes | None,
    ) -> None:
        self.bot = bot
        self.config = config
        self.credentials = credentials
        self.calls = CallRegistry(max_calls=config.max_calls)
        self.claims = TokenClaims()
        self.tokens = StreamTokens(
            secret or stream_secret_from_env() or b"",
            ttl=config.token_ttl,
            store=token_store_from_url(config.redis_url or os.environ.get(REDIS_URL_ENV)),
        )
        self.phone_events = PhoneEvents()
        tracing = enabled_by_env()  # CALLPIPE_OTEL=1: each call's record as a trace
        records = RecordsConfig.resolve(
            local=config.insecure,
            directory=config.records_dir,
            enabled=config.records,
            recording=config.recording,
            tracing=tracing,
        )
        self.record_webhook = RecordWebhook.from_env() if records.enabled else None
        hooks: list[Callable[[dict[str, Any]], None]] = []
        if self.record_webhook is not None:
            hooks.append(self.record_webhook.send)
        exporter = trace_exporter() if tracing and records.enabled else None
        if exporter is not None:
            hooks.append(exporter)
        self.records = RecordStore(records, on_record=hooks)
        self.verifiers: dict[str, WebhookVerifier] = {}
        """Configured webhook checks by provider (none in local mode: nothing is verified, and
        a verifier's optional dependency, e.g. PyNaCl, is then not needed)."""
        self.stream_verifiers: dict[str, StreamVerifier] = {}
        """Upgrade checks of providers that connect without a webhook (Genesys), by name."""
        if not config.insecure:
            secrets = credentials.secrets()
            for provider in registry.PROVIDERS:
                verifier = provider.webhook_verifier(secrets)
                if verifier is not None:
                    self.verifiers[provider.name] = verifier
                stream_verifier = provider.stream_verifier(secrets)
                if stream_verifier is not None:
                    self.stream_verifiers[provider.name] = stream_verifier
        self.dials = DialBook(
            store=dial_store_from_url(config.redis_url or os.environ.get(REDIS_URL_ENV))
        )
        """Calls dialed through ``POST /calls`` (fleet-wide with Redis): their metadata reaches
        ``bot()``."""

    @property
    def secure(self) -> bool:
        return not self.config.insecure

    @property
    def local(self) -> bool:
        """Local mode: nothing verified, API docs served, ``/start`` without an API key."""
        return not self.secure

    async def aclose(self) -> None:
        """Close the token and dial stores (their Redis connections) when the server stops."""
        await self.dials.aclose()
        await self.tokens.store.aclose()


_STATES: weakref.WeakKeyDictionary[FastAPI, RunnerState] = weakref.WeakKeyDictionary()


def runner_state(app: object) -> RunnerState | None:
    """The state :func:`create_app` gave ``app``; None for any other ASGI app (or import path).

    A typed registry rather than attribute probing: the server that drains calls and closes the
    stores asks for the state of exactly the app object it was given.
    """
    return _STATES.get(app) if isinstance(app, FastAPI) else None


def create_app(
    bot: BotFunc,
    config: RunnerConfig | None = None,
    *,
    credentials: Credentials | None = None,
    secret: bytes | None = None,
    app: FastAPI | None = None,
) -> FastAPI:
    """Add the runner's routes to ``app`` (a new FastAPI app by default) serving ``bot``.

    ``secret`` signs stream tokens; by default ``CALLPIPE_STREAM_SECRET`` or a random per-process
    secret (fine for one process; a fleet must share the variable).
    """
    config = config or RunnerConfig()
    app = app or FastAPI(title="callpipe runner")
    install_token_redaction()  # uvicorn logs /ws/<token> request lines at INFO
    preload_models()  # e.g. the Silero model, so the first call does not stall the loop
    freeze_startup_heap()  # short full GC pauses with many calls (see callpipe.utils.heap)
    state = RunnerState(bot, config, credentials or Credentials.from_env(), secret)
    app.state.runner = state
    _STATES[app] = state
    if not state.local:
        remove_api_docs(app)
    app.add_exception_handler(ClientDisconnect, client_gone)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        reason = state.calls.refusal_reason()
        content: dict[str, Any] = {"ready": reason is None, "active_calls": state.calls.active}
        if reason is not None:
            content["reason"] = reason
        return JSONResponse(content, status_code=200 if reason is None else 503)

    @app.get("/status", response_model=None)
    async def status(request: Request) -> dict[str, Any] | JSONResponse:
        if state.credentials.api_key:
            refusal = api_key_refusal(request, state.credentials.api_key, route="/status")
            if refusal is not None:
                return refusal
        transports = [config.transport] if config.transport else list(TELEPHONY_PROVIDERS)
        return {"status": "ready", "transports": transports}

    @app.get("/phone")
    async def phone() -> HTMLResponse:
        """The softphone page: talk to the bot from a browser (speaks Twilio's protocol).

        Only in local (insecure) mode: with security on, /ws admits only streams the provider
        opened with a token from a signed webhook, and a page anyone can load must not mint those.
        """
        if state.secure:
            return HTMLResponse(
                "<p>The softphone page is available in local mode only: start "
                "<code>callpipe demo</code> or <code>python bot.py</code> without "
                "<code>-x</code> (or with <code>--insecure</code>).</p>",
                status_code=404,
            )
        return HTMLResponse(_PHONE_PAGE.read_text(encoding="utf-8"))

    if not state.secure and config.proxy is None:
        # The softphone's transcript: local mode only, never on a public host (even --insecure).
        add_phone_events(app, state.phone_events)

    if state.records.enabled:  # the call inspector: open only in local mode on this machine
        open_access = not state.secure and config.proxy is None
        api_key = state.credentials.api_key
        add_call_inspector(app, state.records, open_access=open_access, api_key=api_key)

    @app.get("/metrics", response_model=None)
    async def metrics(request: Request) -> PlainTextResponse | JSONResponse:
        if state.credentials.api_key:
            refusal = api_key_refusal(request, state.credentials.api_key, route="/metrics")
            if refusal is not None:
                return refusal
        gauges = (
            "# HELP callpipe_runner_active_calls Calls in progress on this process.\n"
            "# TYPE callpipe_runner_active_calls gauge\n"
            f"callpipe_runner_active_calls {state.calls.active}\n"
            "# HELP callpipe_runner_draining 1 while this process drains.\n"
            "# TYPE callpipe_runner_draining gauge\n"
            f"callpipe_runner_draining {int(state.calls.draining)}\n"
        )
        return PlainTextResponse(
            gauges + render_prometheus_text(REGISTRY),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    @app.api_route("/", methods=["GET", "POST"], include_in_schema=False)
    async def answer(request: Request) -> Response:
        return await handle_answer(state, request)

    @app.post("/start")
    async def start(request: Request) -> JSONResponse:
        """Plain WebSocket clients: where to connect, and a one-time token.

        Outside local mode a token is a bot session (STT/LLM/TTS spend): only for holders of
        ``CALLPIPE_API_KEY``.
        """
        if not state.local:
            refusal = api_key_refusal(request, state.credentials.api_key, route="POST /start")
            if refusal is not None:
                CALLS_REFUSED.inc(stage="start", reason="api key")
                logger.warning("POST /start refused (%d): no valid API key", refusal.status_code)
                return refusal
        host = config.proxy or f"{config.host}:{config.port}"
        scheme = "ws" if config.proxy is None else "wss"
        token = state.tokens.issue(provider="websocket")
        body: dict[str, Any] = {"wsUrl": f"{scheme}://{host}/ws"}
        if state.secure:
            body["token"] = token
            body["wsUrl"] = f"{scheme}://{host}/ws/{token}"
        return JSONResponse(body)

    add_outbound_routes(app, state)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await _serve_stream(state, websocket, None)

    @app.websocket("/ws/{token}")
    async def ws_token(websocket: WebSocket, token: str) -> None:
        await _serve_stream(state, websocket, token)

    return app


# ----------------------------------------------------------------------------- media stream


_DISCONNECTED = (WebSocketDisconnect, OSError, RuntimeError)
"""What closing or refusing a socket whose peer is already gone raises (starlette turns uvicorn's
``ClientDisconnected`` into ``WebSocketDisconnect``; a second close is a ``RuntimeError``)."""


def _upgrade_token(websocket: WebSocket, path_token: str | None) -> str | None:
    """The token as far as it is known before the upgrade: URL path, query, or bearer header."""
    if path_token:
        return path_token
    query = websocket.query_params.get("token") or websocket.query_params.get(TOKEN_PARAM)
    if query:
        return query
    return bearer_token(websocket.headers.get("authorization", ""))


def _token_from(websocket: WebSocket, path_token: str | None, body: dict[str, Any]) -> str | None:
    token = _upgrade_token(websocket, path_token)
    if token:
        return token
    value = body.get(TOKEN_PARAM)
    return value if isinstance(value, str) and value else None


def _client_address(websocket: WebSocket) -> str:
    client = websocket.scope.get("client")
    return str(client[0]) if client else ""


def _check_upgrade(state: RunnerState, websocket: WebSocket, token: str | None) -> str | None:
    """Why the upgrade must be refused with 403 (before any WebSocket work), or None."""
    config = state.config
    origin = websocket.headers.get("origin")
    listed = (
        origin is not None
        and bool(config.allowed_origins)
        and is_origin_allowed(origin, config.allowed_origins)
    )
    if listed:
        pass
    elif config.insecure or config.proxy is None:  # local mode: browsers only from our pages
        trusted = tuple(h for h in (config.host, config.proxy) if h)
        if not origin_allowed(origin, websocket.headers.get("host"), trusted):
            return "cross-origin browser request (local mode accepts only its own pages)"
    elif origin is not None and config.allowed_origins:
        return "cross-origin browser request (origin not in --allowed-origins)"
    if not state.secure or token is None:
        return None
    if not plausible_token(token):
        return "malformed token"
    try:
        claims = state.tokens.verify(token)
    except (TokenError, ValueError, TypeError) as exc:
        return str(exc) if isinstance(exc, TokenError) else "malformed token"
    if not state.claims.claim(claims.jti, claims.exp):
        return "token already used"
    return None


def _signed_upgrade(state: RunnerState, websocket: WebSocket) -> tuple[str | None, str | None]:
    """``(provider, refusal)`` for an upgrade a provider authenticates with its own headers
    (Genesys); ``(None, None)`` when no provider claims it (the stream token decides)."""
    provider = registry.claimed_upgrade(websocket.headers)
    if provider is None:
        return None, None
    if not state.secure:
        return provider.name, None
    verifier = state.stream_verifiers.get(provider.name)
    if verifier is None:
        return provider.name, f"{provider.name} upgrade, but its credentials are not configured"
    scope = websocket.scope
    target = (scope.get("raw_path") or scope.get("path", "").encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    # Signed for the public host (-x), as webhooks are; Host only where -x is not known.
    host = state.config.proxy or websocket.headers.get("host", "")
    request = SignedUpgrade(websocket.headers, f"{target}?{query}" if query else target, host)
    refusal = verifier.refusal(request)
    return provider.name, (f"{provider.name}: {refusal}" if refusal is not None else None)


async def _deny(websocket: WebSocket, status: int, reason: str) -> None:
    """Refuse the upgrade with an HTTP ``status``. 403 is a close before accept (every ASGI
    server answers it with 403, without logging an error); 503 carries ``Retry-After`` so a load
    balancer tries another instance (servers without the denial-response extension get a 1013
    close instead). A peer already gone is not an error."""
    try:
        if status == 403:
            await websocket.close(code=1008)
        elif "websocket.http.response" in websocket.scope.get("extensions", {}):
            response = PlainTextResponse(reason, status_code=status, headers={"Retry-After": "1"})
            await websocket.send_denial_response(response)
        else:
            await _refuse(websocket, 1013, reason)
    except _DISCONNECTED:
        pass


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        if websocket.client_state == WebSocketState.CONNECTING:
            await websocket.accept()
        if websocket.client_state == WebSocketState.CONNECTED:
            await websocket.close(code=code, reason=reason)
    except _DISCONNECTED:
        pass


def _stream_credentials(state: RunnerState, websocket: WebSocket, token: str | None) -> str | None:
    """Secure mode: the provider whose credentials the upgrade carries (HTTP auth that its
    webhook verifier accepts, for providers that authenticate streams so: Asterisk); "" when
    it carries, instead of a token, an ``Authorization`` header no such provider accepts; None
    when none applies (the token, if any, decides)."""
    if not state.secure or "authorization" not in websocket.headers:
        return None
    request = SignedWebhook("GET", "", websocket.headers, b"", is_form=False)
    for provider in registry.PROVIDERS:
        verifier = state.verifiers.get(provider.name) if provider.stream_auth else None
        if verifier is not None and verifier.verify(request):
            return provider.name
    return None if token is not None else ""


async def _admit(
    state: RunnerState, websocket: WebSocket, token: str | None, signed_by: str | None = None
) -> WebSocketRunnerArguments | None:
    """Accept, read the provider's handshake, check the token (or that a provider-signed
    upgrade speaks that provider); None if refused (and closed)."""
    config = state.config
    # A provider that asks for a subprotocol drops a socket accepted without one of its own.
    requested = websocket.scope.get("subprotocols", ())
    await websocket.accept(subprotocol=registry.subprotocol_for(requested))
    args = WebSocketRunnerArguments(websocket, session_id=str(uuid.uuid4()))
    args.body = dict(config.body)
    args.cli_args = config.cli_args
    body: dict[str, Any] = {}
    if config.transport == "websocket":
        args.transport_type = "websocket"
    else:
        started = time.monotonic()
        try:
            provider, call_data = await parse_telephony_websocket(
                websocket, timeout=config.handshake_timeout
            )
        except (ProtocolError, ValueError, TypeError, RecursionError) as exc:
            # Hostile input (deep JSON, wrong types) is refused like garbage: counted, one line.
            CALLS_REFUSED.inc(stage="stream", reason="handshake")
            detail = str(exc) if isinstance(exc, ProtocolError) else type(exc).__name__
            logger.warning("refusing stream: %s", detail)
            await _refuse(websocket, 1002, "no telephony handshake")
            return None
        HANDSHAKE_SECONDS.observe(time.monotonic() - started, provider=provider)
        args.transport_type = provider
        args.call_data = call_data
        body = registry.require(provider).stream_parameters(call_data)
    if state.secure and signed_by is not None:
        if args.transport_type != signed_by:
            CALLS_REFUSED.inc(stage="stream", reason="handshake")
            logger.warning("refusing stream: %s upgrade sent another handshake", signed_by)
            await _refuse(websocket, 4003, "unauthorized: handshake does not match the upgrade")
            return None
    elif state.secure:
        call_id = args.call_data.call_id if args.call_data is not None else None
        try:
            await state.tokens.redeem_async(
                token or _token_from(websocket, None, body),
                provider=args.transport_type,
                call_id=call_id,
            )
        except (TokenError, ValueError, TypeError) as exc:
            CALLS_REFUSED.inc(stage="stream", reason="token")
            why = str(exc) if isinstance(exc, TokenError) else "malformed token"
            logger.warning("refusing %s stream: %s", args.transport_type, why)
            await _refuse(websocket, 4003, "unauthorized: missing or invalid stream token")
            return None
    if args.transport_type != "websocket":
        await state.dials.attach(
            args, args.transport_type or "", token or _token_from(websocket, None, body)
        )
    return args


def _masked_call_id(args: WebSocketRunnerArguments | None) -> str:
    """The provider's call id as the transport logs it (masked), to join the two log lines."""
    call_data = args.call_data if args is not None else None
    return mask(call_data.call_id if call_data is not None else None) or "-"


async def _serve_stream(state: RunnerState, websocket: WebSocket, path_token: str | None) -> None:
    """Check the upgrade, admit the stream, take a call slot, run ``bot()`` for the connection.

    Nothing that presented a bad token or a foreign origin gets past the upgrade. Connections
    whose token was valid before the upgrade wait for their handshake in their own pool;
    the rest (local mode, or a token carried in the start message) share a bounded pool with a
    per-address cap. None of them holds a call slot, so silent peers cannot exhaust
    ``--max-calls`` nor the room genuine calls need to start.
    """
    calls = state.calls
    draining_or_full = calls.refusal_reason()
    if draining_or_full is not None:  # first: cheapest, and a balancer retries elsewhere
        CALLS_REFUSED.inc(stage="stream", reason=draining_or_full)
        await _deny(websocket, 503, draining_or_full)
        return
    # A provider that authenticates its own upgrade (Genesys) carries no token; what follows
    # /ws/ in its URL is its own (Genesys appends the Architect action's connector id).
    signed_by, denied = _signed_upgrade(state, websocket)
    token = None if signed_by is not None else _upgrade_token(websocket, path_token)
    if signed_by is None and denied is None:
        # Providers that send HTTP credentials on the upgrade instead of a token (Asterisk).
        credentials_of = _stream_credentials(state, websocket, token)
        if credentials_of == "":
            denied = "wrong credentials"
        else:
            signed_by = credentials_of
    if denied is None:
        denied = _check_upgrade(state, websocket, token)
    if denied is not None:
        reason = "origin" if denied.startswith("cross-origin") else "token"
        CALLS_REFUSED.inc(stage="stream", reason=reason)
        logger.warning("refusing /ws upgrade (403): %s", denied)
        await _deny(websocket, 403, "forbidden")
        return
    authenticated = state.secure and (token is not None or bool(signed_by))
    address = _client_address(websocket) if state.secure and not authenticated else None
    busy = calls.begin_handshake(address, authenticated=authenticated)
    if busy is not None:
        CALLS_REFUSED.inc(stage="stream", reason=busy)
        await _deny(websocket, 503, busy)
        return
    call: ActiveCall | None = None
    args: WebSocketRunnerArguments | None = None
    record_id: str | None = None
    reserved = False
    outcome = "ok"
    try:
        try:
            args = await _admit(state, websocket, token, signed_by or None)
        finally:
            calls.end_handshake(address, authenticated=authenticated)
        if args is None:
            return
        if not calls.reserve():
            reason = calls.refusal_reason() or "unavailable"
            CALLS_REFUSED.inc(stage="stream", reason=reason)
            await _refuse(websocket, 1013, reason)
            return
        reserved = True
        call = ActiveCall(args, args.transport_type or "websocket")
        calls.register(call)
        logger.info(
            "call started (%s call %s, session %s)",
            call.provider,
            _masked_call_id(args),
            args.session_id,
        )
        sink = state.phone_events.sink(args.call_data.call_id if args.call_data else None)
        events = TURN_EVENTS.set(sink) if sink is not None else None
        record_id = state.records.begin_call(call.provider, args)
        try:
            with state.records.serving(record_id):
                await state.bot(args)
        finally:
            if events is not None:
                TURN_EVENTS.reset(events)
    except WebSocketDisconnect:
        # The peer hung up while the bot (or the handshake) was still talking to it: the normal
        # end of a phone call, reported by the "call ended" line below, never as an error.
        outcome = "hangup"
    except Exception as exc:
        outcome = "error"
        if call is None:
            logger.exception("stream failed")
        elif isinstance(exc, OriginNotAllowedError):
            # The transport's own allowed_origins refused a browser: a refusal, not a bug.
            logger.warning(
                "call refused (%s call %s): %s", call.provider, _masked_call_id(args), exc
            )
        elif isinstance(exc, ConfigurationError):
            # The bot's own setup is wrong (e.g. missing credentials): the message says how to
            # fix it, a traceback adds nothing. One line, and the caller's side learns why.
            logger.error("bot() failed (%s call %s): %s", call.provider, _masked_call_id(args), exc)
        else:
            logger.exception("bot() failed (%s call %s)", call.provider, _masked_call_id(args))
        if call is not None:
            refused = isinstance(exc, OriginNotAllowedError)
            code, why = (1008, "origin not allowed") if refused else (BOT_FAILED_CODE, None)
            with contextlib.suppress(Exception):  # best effort: the peer may be gone already
                await _refuse(websocket, code, why or bot_failure_reason(exc))
    finally:
        state.records.end(record_id, outcome)
        if call is not None:
            calls.unregister(call, outcome)
            logger.info(
                "call ended (%s call %s, %s)", call.provider, _masked_call_id(args), outcome
            )
        if reserved:
            calls.release()
        if websocket.client_state == WebSocketState.CONNECTED:
            try:
                await websocket.close()
            except _DISCONNECTED:
                pass
