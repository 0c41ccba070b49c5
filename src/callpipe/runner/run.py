"""``main()``: the development runner's CLI (``python bot.py -t twilio -x my.domain``).

A bot file defines ``async def bot(runner_args)`` and ends with
``from callpipe.runner.run import main; main()``. ``main`` finds ``bot`` in ``__main__`` (or in
``bot.py`` of the working directory; it never executes other files), builds the app, logs the
webhook URL to configure at the provider, and serves until drained.

Unlike Pipecat's runner, importing this module has no side effects: ``.env`` is loaded (when
python-dotenv is installed) and logging configured only inside ``main()``. A module-level ``app``
is provided for bots that add their own routes before calling ``main()``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import multiprocessing
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from callpipe.pipeline.turn_log import TURN_LOGGER
from callpipe.providers import registry
from callpipe.runner.app import BotFunc, RunnerConfig, create_app
from callpipe.runner.audiosocket import is_private_host
from callpipe.runner.http_guard import API_KEY_ENV
from callpipe.runner.local import banner, is_loopback
from callpipe.runner.security import STREAM_SECRET_ENV
from callpipe.runner.token_store import REDIS_URL_ENV
from callpipe.runner.types import TELEPHONY_PROVIDERS
from callpipe.utils.security.allowed_origins import default_allowed_origins, parse_origins

if TYPE_CHECKING:
    from callpipe.runner.server import WorkerSpec

logger = logging.getLogger(__name__)

app = FastAPI(title="callpipe runner")
"""Add your own routes here before calling ``main()``; the runner's routes are added to it."""

TRANSPORTS = (*TELEPHONY_PROVIDERS, "websocket")

WIRE_LOGGERS = ("uvicorn.error", "websockets", "websockets.server", "websockets.protocol")
"""Loggers that dump every WebSocket frame at DEBUG; silenced unless ``--wire-debug``."""

REST_LOGGERS = ("httpx", "httpcore")
"""Loggers that print every REST request's URL at INFO: a provider's call-control URL names the
call by its raw id (and the account), so they show only warnings unless ``--wire-debug``."""

_loading_bot = False
"""True while the runner imports a bot file, so that file's own ``main()`` call does nothing."""


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        description="callpipe development runner", allow_abbrev=False
    )
    # No prefix matching, also on a bot's own parser: `--prox HOST` or `--insec` must be an
    # error, never a silently different (or less secure) server.
    parser.allow_abbrev = False
    add = parser.add_argument
    add("-t", "--transport", choices=TRANSPORTS, default=None, help="provider (default: detect)")
    add("-x", "--proxy", default=None, help="public host name the provider reaches (no scheme)")
    add("--host", default="localhost", help="bind address (default localhost)")
    add("--port", type=int, default=7860, help="port (default 7860)")
    add(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="per-turn lines: caller said / bot said / latency (-vv: debug logging)",
    )
    add(
        "--wire-debug",
        action="store_true",
        help="also log every WebSocket frame on the wire (very noisy)",
    )
    add("--workers", type=int, default=1, help="worker processes serving the port")
    add(
        "--insecure",
        action="store_true",
        help="local experiments only: no webhook signature check, no stream tokens",
    )
    add("--max-calls", type=int, default=None, help="concurrent calls per process")
    add("--drain-timeout", type=float, default=30.0, help="seconds calls may run after SIGTERM")
    add("--handshake-timeout", type=float, default=10.0, help="seconds to wait for 'start'")
    add("--token-ttl", type=float, default=30.0, help="stream token lifetime in seconds")
    add("--runner-body", default=None, help="JSON file passed as runner_args.body")
    add(
        "--redis-url",
        default=None,
        help="share stream tokens and dial records with a fleet (env CALLPIPE_REDIS_URL)",
    )
    add(
        "--records",
        metavar="DIR",
        default=None,
        help="write a JSON record of every call to DIR (records are kept in memory for /calls "
        "in local mode anyway; env CALLPIPE_RECORDS_DIR)",
    )
    add("--no-records", action="store_true", help="keep no call records, not even in local mode")
    add(
        "--audiosocket-port",
        type=int,
        default=None,
        help="also take Asterisk AudioSocket calls on this TCP port (no authentication)",
    )
    add(
        "--audiosocket-host",
        default="127.0.0.1",
        help="bind address of the AudioSocket listener (default 127.0.0.1; keep it private)",
    )
    add(
        "--recording",
        action="store_true",
        help="also record each call's audio (stereo WAV; env CALLPIPE_RECORDING=1)",
    )
    add(
        "--ws-auth",
        choices=("none", "token"),
        default=os.environ.get("CALLPIPE_WEBSOCKET_AUTH")
        or os.environ.get("PIPECAT_WEBSOCKET_AUTH")
        or None,
        help="Pipecat's flag: 'token' requires a stream token on every stream, also in local "
        "mode (env CALLPIPE_WEBSOCKET_AUTH or PIPECAT_WEBSOCKET_AUTH); 'none' changes nothing: "
        "outside local mode streams always need a token unless --insecure",
    )
    add(
        "--allowed-origins",
        nargs="*",
        default=None,
        metavar="ORIGIN",
        help="browser origins that may open a stream, e.g. https://app.example.com (env "
        "CALLPIPE_ALLOWED_ORIGINS or PIPECAT_ALLOWED_ORIGINS, comma-separated); providers send "
        "no Origin and are not affected",
    )
    return parser


def _normalise_proxy(proxy: str | None) -> str | None:
    if not proxy:
        return None
    for prefix in ("https://", "http://", "wss://", "ws://"):
        if proxy.startswith(prefix):
            logger.warning("-x/--proxy takes a host name; dropping %r", prefix)
            proxy = proxy[len(prefix) :]
    return proxy.rstrip("/") or None


def configure_logging(verbose: int, wire_debug: bool = False) -> None:
    """INFO by default; ``-v`` adds the per-turn lines, ``-vv`` debug logging of callpipe.

    uvicorn's per-frame dumps (its ``websockets`` protocol logs at DEBUG/TRACE) appear only with
    ``--wire-debug``: a 20 s call is thousands of them.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if verbose:
        logging.getLogger(TURN_LOGGER).setLevel(logging.DEBUG)
    wire_level = logging.DEBUG if wire_debug else logging.INFO
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(wire_level)
    for name in REST_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if wire_debug else logging.WARNING)


def _load_dotenv() -> None:
    try:
        from dotenv import find_dotenv, load_dotenv
    except ImportError:
        return
    # usecwd: search from the working directory; by default python-dotenv would start from
    # this file's folder (inside site-packages) and never see the user's .env.
    load_dotenv(find_dotenv(usecwd=True), override=False)


def load_bot_file(path: str) -> ModuleType:
    """Import a bot file by path without letting its own ``main()`` call start a server."""
    global _loading_bot
    spec = importlib.util.spec_from_file_location("callpipe_user_bot", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["callpipe_user_bot"] = module
    _loading_bot = True
    try:
        spec.loader.exec_module(module)
    finally:
        _loading_bot = False
    return module


def find_bot(bot_path: str | None = None) -> tuple[BotFunc, str | None]:
    """``bot`` from ``__main__`` (or ``__mp_main__`` in a worker), else from ``bot.py``."""
    if bot_path:
        loaded = sys.modules.get("callpipe_user_bot") or load_bot_file(bot_path)
        func = getattr(loaded, "bot", None)
        if callable(func):
            return func, bot_path
        raise ImportError(f"{bot_path} defines no 'bot' function")
    for name in ("__main__", "__mp_main__"):
        module = sys.modules.get(name)
        func = getattr(module, "bot", None)
        if callable(func):
            return func, getattr(module, "__file__", None)
    candidate = os.path.join(os.getcwd(), "bot.py")
    if os.path.exists(candidate):
        return find_bot(candidate)
    raise ImportError(
        "Could not find a 'bot' function: define `async def bot(runner_args)` in the file "
        "that calls main(), or in bot.py"
    )


def _config_from_args(args: argparse.Namespace) -> RunnerConfig:
    body: dict[str, Any] = {}
    if args.runner_body:
        import json

        with open(args.runner_body, encoding="utf-8") as fh:
            body = json.load(fh)
    return RunnerConfig(
        transport=args.transport,
        proxy=_normalise_proxy(args.proxy),
        host=args.host,
        port=args.port,
        insecure=args.insecure,
        max_calls=args.max_calls,
        drain_timeout=args.drain_timeout,
        handshake_timeout=args.handshake_timeout,
        token_ttl=args.token_ttl,
        redis_url=args.redis_url or os.environ.get(REDIS_URL_ENV) or None,
        body=body,
        cli_args=args,
        records_dir=args.records,
        records=False if args.no_records else None,
        recording=True if args.recording else None,
        audiosocket_port=args.audiosocket_port,
        audiosocket_host=args.audiosocket_host,
        allowed_origins=(
            default_allowed_origins()
            if args.allowed_origins is None
            else [o for entry in args.allowed_origins for o in parse_origins(entry)]
        ),
    )


_serving: tuple[str, int] = ("localhost", 7860)


def runner_host() -> str:
    """The host the runner serves on (``--host``; Pipecat's function of the same name)."""
    return _serving[0]


def runner_port() -> int:
    """The port the runner serves on (``--port``)."""
    return _serving[1]


def runner_downloads_folder() -> str | None:
    """Pipecat's folder of files kept for download: callpipe's runner keeps none (None)."""
    return None


def _note_serving(host: str, port: int) -> None:
    global _serving
    _serving = (host, port)


def build_app_from_spec(spec: WorkerSpec) -> FastAPI:
    """Rebuild the app inside a worker process (``spec`` is what ``main`` passed)."""
    _note_serving(spec.host, spec.port)
    bot, _ = find_bot(spec.bot_path)
    config = replace(spec.config, cli_args=argparse.Namespace(**spec.cli_args))
    return create_app(bot, config)


def _log_instructions(config: RunnerConfig, workers: int) -> None:
    local = f"http://{config.host}:{config.port}"
    if config.insecure and config.proxy is None:
        pass  # local mode: the banner says where to go
    elif (provider := registry.get(config.transport)) is not None:
        host = config.proxy or "<your public host: pass -x>"
        where = provider.setup_hint
        logger.info("configure %s: %s", where, provider.setup_url(host))
    elif config.transport == "websocket":
        logger.info("WebSocket clients: POST %s/start for a URL and token", local)
    elif config.insecure:
        logger.info("no -t given: POST / detects the provider from the request")
    else:
        logger.info("no -t given: POST / takes the provider from the request's signature")
    logger.info("serving on %s (health /health, readiness /ready, metrics /metrics)", local)
    if config.insecure and config.proxy is None and is_loopback(config.host):
        logger.info(
            "local mode (no -x): loopback only, /ws takes any provider stream without tokens"
        )
        return
    for level, message in security_notes(config, dict(os.environ), workers):
        logger.log(level, "%s", message)


WEBHOOK_SECRETS: dict[str, tuple[str, ...]] = registry.webhook_secrets()
"""The environment variables that configure each provider's webhook verification."""


def _verified_providers(env: dict[str, str]) -> list[str]:
    return [p for p, names in WEBHOOK_SECRETS.items() if any(env.get(n) for n in names)]


def startup_refusal(config: RunnerConfig, env: dict[str, str]) -> str | None:
    """Why a public (``-x``) secure runner must not start, or None.

    With ``-x`` the server is reachable by anyone: without a webhook secret every request would
    be refused (or, before, accepted unchecked). Start only when the provider's verification is
    configured, or when the operator explicitly chose ``--insecure``. AudioSocket cannot
    authenticate at all, so a secure runner listens for it on private addresses only.
    """
    if config.insecure:
        return None
    if config.audiosocket_port is not None and not is_private_host(config.audiosocket_host):
        return (
            f"AudioSocket has no authentication: --audiosocket-host {config.audiosocket_host} "
            "is not a loopback or private address"
        )
    if not config.proxy:
        return None
    verified = _verified_providers(env)
    transport = config.transport
    if transport == "websocket":
        if env.get(API_KEY_ENV):
            return None
        return f"-t websocket with -x needs {API_KEY_ENV} (clients send it to POST /start)"
    if transport in WEBHOOK_SECRETS:
        if transport in verified:
            return None
        names = " or ".join(WEBHOOK_SECRETS[transport])
        return f"-x needs {names} so {transport} webhooks can be verified"
    if transport in TELEPHONY_PROVIDERS:
        return (
            f"callpipe cannot verify {transport} webhooks; with -x run it only with --insecure "
            "(and an IP allow-list in front of the bot)"
        )
    if verified:
        return None
    names = ", ".join(n for group in WEBHOOK_SECRETS.values() for n in group)
    return f"-x needs a webhook secret ({names}) so provider webhooks can be verified"


def security_notes(
    config: RunnerConfig, env: dict[str, str], workers: int
) -> list[tuple[int, str]]:
    """The start-up lines about security: each one states what this server actually does."""
    notes: list[tuple[int, str]] = []
    if config.insecure:
        notes.append(
            (
                logging.WARNING,
                "--insecure: webhook signatures are NOT verified and /ws accepts any connection "
                "without a stream token; use only for local experiments",
            )
        )
        return notes
    verified = _verified_providers(env)
    if not config.proxy:
        notes.append(
            (
                logging.WARNING,
                "no -x: provider webhooks are refused (403) because the public URL they are "
                "signed for is unknown; pass -x HOST to take calls",
            )
        )
    elif config.transport in (None, *WEBHOOK_SECRETS):
        accepted = [config.transport] if config.transport else verified
        refused = [p for p in TELEPHONY_PROVIDERS if p not in accepted]
        notes.append(
            (
                logging.INFO,
                f"webhooks: accepted only when signed by {', '.join(accepted)}; "
                f"{', '.join(refused)} requests are refused (403)",
            )
        )
    if config.transport == "websocket" or config.transport is None:
        if env.get(API_KEY_ENV):
            notes.append((logging.INFO, f"POST /start requires the {API_KEY_ENV} bearer key"))
        else:
            level = logging.WARNING if config.transport == "websocket" else logging.INFO
            notes.append((level, f"{API_KEY_ENV} is not set: POST /start refuses every client"))
    if not env.get(STREAM_SECRET_ENV) and workers == 1:
        notes.append(
            (
                logging.INFO,
                f"stream tokens use a per-process secret; set {STREAM_SECRET_ENV} to share it "
                "across instances",
            )
        )
    if env.get(REDIS_URL_ENV) or config.redis_url:
        notes.append((logging.INFO, "stream tokens and dial records are fleet-wide (Redis)"))
    elif workers > 1:
        notes.append(
            (
                logging.INFO,
                f"dial records (POST /calls) are per worker; set {REDIS_URL_ENV} to share them",
            )
        )
    return notes


def _local_mode(args: argparse.Namespace) -> bool:
    """No ``-x`` on a loopback address: local mode (turns ``insecure`` on; see runner.local);
    never with ``--ws-auth token``.

    On any other address without ``-x`` the runner stays secure: it may be behind a load
    balancer, and anyone who can reach the port could otherwise open calls.
    """
    if args.ws_auth == "token":
        if args.insecure:
            raise SystemExit("--ws-auth token and --insecure contradict each other")
        return False  # tokens on every stream, also on loopback
    if args.proxy or not (args.insecure or is_loopback(args.host)):
        return False
    args.insecure = True
    return True


def _default_title(bot_path: str | None, local: bool) -> str:
    name = os.path.basename(bot_path) if bot_path else "your bot"
    if local:
        return f"callpipe: {name} in local mode (loopback only, no stream tokens)"
    return f"callpipe: {name}"


def main(parser: argparse.ArgumentParser | None = None, argv: Sequence[str] | None = None) -> None:
    """Parse the CLI and serve the bot found in ``__main__`` (or ``bot.py``) until drained."""
    if _loading_bot or multiprocessing.parent_process() is not None:
        return  # imported by the runner itself or by a worker: never start a second server
    args = build_parser(parser).parse_args(argv)
    configure_logging(args.verbose, args.wire_debug)
    _load_dotenv()
    bot_path = getattr(args, "bot_file", None)
    bot, found_path = find_bot(bot_path)
    local = _local_mode(args)
    config = _config_from_args(args)
    _note_serving(config.host, config.port)
    refusal = startup_refusal(config, dict(os.environ))
    if refusal is not None:
        logger.error("not starting: %s (or pass --insecure for local experiments)", refusal)
        raise SystemExit(2)
    _log_instructions(config, args.workers)
    if local or config.proxy:
        title = getattr(args, "banner_title", None) or _default_title(found_path, local)
        calls = local and config.records is not False  # the call inspector, /calls
        print(banner(title, config.host, config.port, config.proxy, calls=calls), flush=True)
    if args.workers > 1:
        from callpipe.runner.server import WorkerSpec, serve_workers

        if not os.environ.get(STREAM_SECRET_ENV):
            # Every worker must validate tokens issued by any other: share one secret.
            import secrets

            os.environ[STREAM_SECRET_ENV] = secrets.token_hex(32)
        spec = WorkerSpec(
            host=config.host,
            port=config.port,
            build_app=build_app_from_spec,
            setup_logging=configure_logging,
            config=replace(config, cli_args=None),
            bot_path=bot_path or found_path,
            cli_args=dict(vars(args)),
            verbose=args.verbose,
            wire_debug=args.wire_debug,
        )
        raise SystemExit(serve_workers(spec, args.workers))
    from callpipe.runner.server import serve

    create_app(bot, config, app=app)
    serve(app, config.host, config.port, args.verbose, wire_debug=args.wire_debug)
