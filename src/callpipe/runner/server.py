"""Serving the runner app with uvicorn: graceful drain on SIGTERM, and several worker processes.

uvicorn's own SIGTERM handling closes the listening socket at once, so a draining process could
no longer answer ``/ready`` (a load balancer must see it go unready) nor let calls finish on their
own terms. :class:`DrainingServer` keeps serving during the drain: the first SIGTERM/SIGINT starts
``CallRegistry.drain`` and the server exits (code 0) when it completes; a second signal exits at
once. ``serve_workers`` is a small supervisor (uvicorn's cannot run a custom server class): it
reserves the port, starts N spawned workers that each run a ``DrainingServer``, and forwards
SIGTERM/SIGINT to them.

On Linux each worker listens on a socket of its own, all bound to the port with
``SO_REUSEPORT``, so the kernel spreads new connections evenly over the workers (by a hash of
the connection's addresses). With one shared listening socket, as uvicorn's ``--workers`` does,
whichever worker wakes first accepts every connection waiting, and calls arriving in bursts
pile up on one worker: 200 benchmark calls split 83/119 run after run, and the busier worker
fell behind while the other had room. Elsewhere (no balancing ``SO_REUSEPORT``) the workers
share one socket as before. The cost of separate sockets: connections still in the accept
queue of a worker that crashes are reset instead of going to another worker.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any

import uvicorn

from callpipe.runner.app import RunnerConfig, RunnerState, runner_state
from callpipe.runner.audiosocket import AudioSocketServer
from callpipe.runner.limits import ConnectionLimits, raise_nofile_limit, uvicorn_ws_options

logger = logging.getLogger(__name__)

SIGNAL_DEDUPE_SECS = 1.0
"""A signal within this long of the first is the same request: Ctrl-C or ``timeout`` signal the
whole process group, so a worker gets it both directly and forwarded by the supervisor."""


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM/SIGINT drains calls before exiting.

    ``runner`` is the state whose calls it drains and whose stores it closes on shutdown; by
    default the one :func:`~callpipe.runner.app.create_app` gave ``config.app``. Pass it when
    serving the runner app wrapped in other ASGI middleware or by import path.
    """

    def __init__(self, config: uvicorn.Config, *, runner: RunnerState | None = None) -> None:
        super().__init__(config)
        self._runner = runner if runner is not None else runner_state(config.app)
        self._drain_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._first_signal_at = 0.0

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        audiosocket = await self._start_audiosocket()
        try:
            await super().serve(sockets=sockets)
        finally:
            if audiosocket is not None:
                await audiosocket.close()
            if self._runner is not None:
                await self._runner.aclose()  # the fleet's Redis connections, after the last call

    async def _start_audiosocket(self) -> AudioSocketServer | None:
        """The AudioSocket listener beside HTTP, when the runner was asked for one."""
        state = self._runner
        if state is None or state.config.audiosocket_port is None:
            return None
        server = AudioSocketServer(state)
        await server.start(state.config.audiosocket_host, state.config.audiosocket_port)
        return server

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state = self._runner
        now = time.monotonic()
        if self._drain_task is not None and now - self._first_signal_at < SIGNAL_DEDUPE_SECS:
            return  # the same request delivered twice (terminal group + supervisor)
        if self._drain_task is not None or state is None or self._loop is None:
            # Second signal (or nothing to drain): stop now.
            if self._drain_task is not None:
                logger.warning("second signal: stopping without waiting for calls")
            self.should_exit = True
            if self._drain_task is not None and sig == signal.SIGINT:
                self.force_exit = True
            return
        logger.info(
            "received %s: draining (readiness false, %d active call(s))",
            signal.Signals(sig).name,
            state.calls.active,
        )
        self._first_signal_at = now
        self._drain_task = self._loop.create_task(self._drain(state))

    async def _drain(self, state: RunnerState) -> None:
        try:
            await state.calls.drain(state.config.drain_timeout, state.config.end_grace)
        except Exception:
            logger.exception("drain failed")
        finally:
            self.should_exit = True


def uvicorn_config(
    app: Any,
    host: str,
    port: int,
    verbose: int,
    *,
    wire_debug: bool = False,
    limits: ConnectionLimits | None = None,
    **kwargs: Any,
) -> uvicorn.Config:
    """The runner's uvicorn settings: no permessage-deflate, messages capped at what providers
    send, request headers timed out, connections capped below the open-file limit (see
    :mod:`callpipe.runner.limits`). Raises the soft ``RLIMIT_NOFILE`` of this process.

    uvicorn at DEBUG dumps every WebSocket frame, so only ``--wire-debug`` asks for it
    (``-v`` is for callpipe's own per-turn lines)."""
    del verbose  # kept for callers; the wire dump is a separate choice
    options = {**uvicorn_ws_options(limits, nofile=raise_nofile_limit()), **kwargs}
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="debug" if wire_debug else "info",
        lifespan="off",
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=5,
        **options,
    )


def serve(app: Any, host: str, port: int, verbose: int = 0, *, wire_debug: bool = False) -> None:
    """Run one process until drained."""
    DrainingServer(uvicorn_config(app, host, port, verbose, wire_debug=wire_debug)).run()


# ----------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class WorkerSpec:
    """What a spawned worker needs to rebuild the app: typed, and picklable by reference.

    ``build_app`` and ``setup_logging`` are module-level functions (the runner's own), pickled
    by name, so this module never imports the CLI module that starts it.
    """

    host: str
    port: int
    build_app: Callable[[WorkerSpec], Any]
    setup_logging: Callable[[int, bool], None]
    config: RunnerConfig
    """The runner's settings (without ``cli_args``, which travel as plain values below)."""
    bot_path: str | None = None
    cli_args: dict[str, Any] = field(default_factory=dict)
    """The parsed command line as plain values; the worker rebuilds ``runner_args.cli_args``."""
    verbose: int = 0
    wire_debug: bool = False


def balanced_reuse_port() -> bool:
    """Whether this platform's ``SO_REUSEPORT`` spreads connections over the listeners (Linux
    does; on BSD and macOS the option exists but one listener gets them all)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_tcp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when the host has a colon), not yet listening.

    Created as ``IPPROTO_TCP`` (so asyncio sets ``TCP_NODELAY`` on accepted connections) and
    inheritable (so a spawned worker can be handed it). ``reuse_port``: join the port's
    ``SO_REUSEPORT`` group, whose listeners the kernel balances new connections over.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _worker_main(spec: WorkerSpec, shared: socket.socket | None) -> None:
    """Entry point of a spawned worker: rebuild the app from ``spec`` and serve it, on the
    ``shared`` socket or (``None``) on a listener of its own in the port's reuse-port group."""
    spec.setup_logging(spec.verbose, spec.wire_debug)
    sock = shared if shared is not None else bind_tcp_socket(spec.host, spec.port, reuse_port=True)
    app = spec.build_app(spec)
    config = uvicorn_config(app, spec.host, spec.port, spec.verbose, wire_debug=spec.wire_debug)
    server = DrainingServer(config)
    server.run(sockets=[sock])


def serve_workers(spec: WorkerSpec, workers: int) -> int:
    """Start ``workers`` processes serving ``spec.host:spec.port``; return the exit code.

    On Linux the supervisor binds the port in the reuse-port group without listening (the port
    is taken, and a busy port fails here, before any worker starts: also one held by another
    process's reuse-port group) and each worker listens on a socket of its own; elsewhere the
    workers share the supervisor's listening socket.
    """
    balanced = balanced_reuse_port()
    try:
        # First without SO_REUSEPORT: that bind fails on any listener there, including another
        # runner's reuse-port group (which would otherwise quietly share our calls).
        sock = bind_tcp_socket(spec.host, spec.port)
        if balanced:
            port = sock.getsockname()[1]
            sock.close()
            sock = bind_tcp_socket(spec.host, port, reuse_port=True)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", spec.host, spec.port, exc)
        return 1
    port = sock.getsockname()[1]
    spec = replace(spec, port=port)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(spec, None if balanced else sock),
            name=f"callpipe-worker-{i}",
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    logger.info(
        "started %d workers on %s:%d (%s): %s",
        workers,
        spec.host,
        port,
        "a listener each, SO_REUSEPORT" if balanced else "one shared listener",
        ", ".join(str(p.pid) for p in procs),
    )

    def forward(sig: int, _frame: FrameType | None) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()
    sock.close()
    codes = [p.exitcode for p in procs]
    logger.info("workers exited: %s", codes)
    return 0 if all(code == 0 for code in codes) else 1


if sys.platform == "win32":  # pragma: no cover
    raise ImportError("callpipe.runner.server needs POSIX signals")
