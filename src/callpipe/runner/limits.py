"""Connection limits below the app: what uvicorn itself does not bound.

A hostile peer must be refused before it costs the shared event loop (100+ calls) anything
real. uvicorn leaves four doors open by default, closed here:

- **Compression bombs.** permessage-deflate is negotiated by default and a message may be 16 MiB,
  so a few KB on the wire inflate to MiBs on the loop. No telephony provider compresses, so
  :func:`uvicorn_ws_options` turns it off and caps a message at :data:`WS_MAX_SIZE`.
- **Slowloris.** An HTTP request whose headers or body never complete is never timed out, and
  nothing caps connections, so a peer can hold every file descriptor. :class:`GuardedHttpProtocol`
  times out incomplete headers and bodies (408), caps the header size (431) and counts open
  connections, in total and per client address (a refused connection is reset at once, before
  any parsing).
- **Control-frame floods.** uvicorn answers every ping with a pong, even for a peer that never
  reads, and control frames bypass every application-level flood guard.
  :class:`GuardedWebSocketProtocol` counts pings and pongs in a token bucket and cuts the peer off
  (TCP abort) when it exceeds it or when its unread output piles up.
- **The open-file limit.** :func:`raise_nofile_limit` lifts the soft ``RLIMIT_NOFILE`` to the hard
  limit, and the total connection cap stays below it so the server never hits ``EMFILE`` (where
  even ``/health`` goes dark).

The classes subclass uvicorn's own ``httptools`` HTTP protocol and ``websockets`` sans-I/O
WebSocket protocol (uvicorn's defaults with ``uvicorn[standard]``): both expose the exact hooks
needed (``connection_made``, parser callbacks, ``handle_ping``/``handle_pong``), so no byte
handling is re-implemented. :func:`uvicorn_ws_options` binds them to one
:class:`ConnectionTracker` and returns the ``uvicorn.Config`` keyword arguments. The HTTP
protocol also turns Nagle off on each admitted TCP connection (see :func:`_disable_nagle`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_remote_addr
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from callpipe.errors import ConfigurationError
from callpipe.metrics.registry import REGISTRY

logger = logging.getLogger(__name__)

WS_MAX_SIZE = 256 * 1024
"""Largest WebSocket message accepted (bytes). The largest provider message is Exotel's media
event: up to 100 KB of PCM per chunk, base64 (133 KB) in a JSON envelope; Twilio, Telnyx, Plivo
and Vonage send 20 ms packets (< 1 KB) and start messages of a few KB. 256 KiB leaves ~2x margin."""

CONNECTIONS_REFUSED = REGISTRY.counter(
    "callpipe_runner_connections_refused_total",
    "Connections cut below the app (labels: reason).",
)

_ENV_TOTAL = "CALLPIPE_MAX_CONNECTIONS"
_ENV_PER_ADDRESS = "CALLPIPE_MAX_CONNECTIONS_PER_ADDRESS"
_ENV_HEADER_TIMEOUT = "CALLPIPE_HEADER_TIMEOUT"
_ENV_BODY_TIMEOUT = "CALLPIPE_BODY_TIMEOUT"

_SLICE_BYTES = 16 * 1024
"""A WebSocket read is parsed this much at a time, so a control-frame flood is cut early."""

_FD_RESERVE = 64
"""File descriptors kept free for logs, the provider REST clients and the listening socket."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Bounds on connections a process holds. Defaults fit one process serving 100+ calls."""

    max_connections: int = 8192
    """Open connections in total (lowered at start to stay below ``RLIMIT_NOFILE``)."""
    max_per_address: int = 512
    """Open connections from one client address. Behind a reverse proxy every connection has the
    proxy's address: raise this, or let the proxy enforce its own per-client limit."""
    header_timeout: float = 10.0
    """Seconds a request may take to send its complete headers (slowloris)."""
    max_header_bytes: int = 32 * 1024
    """Request line plus headers; providers send a few KB."""
    body_timeout: float = 10.0
    """Seconds a request may take to send its body once its headers are in (slow POST). Webhook
    bodies are capped at 64 KiB, which any genuine sender delivers in well under a second."""
    control_frames_per_sec: float = 10.0
    """Sustained ping/pong rate a WebSocket peer may send (carriers send a ping every few s)."""
    control_frame_burst: int = 50
    max_unread_bytes: int = 256 * 1024
    """Output a peer may leave unread while we answer its pings (a flood that never reads)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionLimits:
        """Defaults, overridden by ``CALLPIPE_MAX_CONNECTIONS``,
        ``CALLPIPE_MAX_CONNECTIONS_PER_ADDRESS``, ``CALLPIPE_HEADER_TIMEOUT`` and
        ``CALLPIPE_BODY_TIMEOUT`` (seconds)."""
        env = os.environ if environ is None else environ
        base = cls()
        try:
            return cls(
                max_connections=int(env.get(_ENV_TOTAL) or base.max_connections),
                max_per_address=int(env.get(_ENV_PER_ADDRESS) or base.max_per_address),
                header_timeout=float(env.get(_ENV_HEADER_TIMEOUT) or base.header_timeout),
                body_timeout=float(env.get(_ENV_BODY_TIMEOUT) or base.body_timeout),
            )
        except ValueError as exc:
            raise ConfigurationError(f"connection limits from the environment: {exc}") from exc


def raise_nofile_limit() -> int:
    """Lift the soft ``RLIMIT_NOFILE`` to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # e.g. a sandbox that forbids it
            logger.warning("could not raise the open-file limit from %d: %s", soft, exc)
    return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20


class ConnectionTracker:
    """Open connections of one server, in total and per client address.

    Keyed by transport: an upgraded connection moves from the HTTP protocol to the WebSocket
    protocol object, and whichever sees the connection end releases it (idempotently).
    """

    def __init__(self, limits: ConnectionLimits, *, nofile: int | None = None) -> None:
        self.limits = limits
        cap = limits.max_connections
        if nofile is not None:
            cap = max(1, min(cap, nofile - _FD_RESERVE))
        self.max_connections = cap
        self._open: dict[int, str] = {}
        self._by_address: dict[str, int] = {}

    @property
    def total(self) -> int:
        return len(self._open)

    def count(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def admit(self, transport: asyncio.BaseTransport) -> str | None:
        """Count a new connection; the reason it must be refused, or None."""
        remote = get_remote_addr(cast(asyncio.Transport, transport))
        address = remote[0] if remote else ""
        if len(self._open) >= self.max_connections:
            return "too many connections"
        if self._by_address.get(address, 0) >= self.limits.max_per_address:
            return "too many connections from one address"
        self._open[id(transport)] = address
        self._by_address[address] = self._by_address.get(address, 0) + 1
        return None

    def release(self, transport: asyncio.BaseTransport | None) -> None:
        address = self._open.pop(id(transport), None)
        if address is None:
            return
        left = self._by_address[address] - 1
        if left:
            self._by_address[address] = left
        else:
            del self._by_address[address]


def _refuse(reason: str) -> None:
    CONNECTIONS_REFUSED.inc(reason=reason)
    logger.debug("connection refused: %s", reason)


def _disable_nagle(transport: asyncio.BaseTransport) -> None:
    """Send small writes at once (``TCP_NODELAY``) on a TCP connection.

    uvloop does this for every TCP connection, asyncio's own loop only when the listening socket
    was created as ``IPPROTO_TCP``, which uvicorn's ``bind_socket`` (uvicorn's own ``--workers``
    and ``--fd``) does not do. With Nagle on, a 20 ms audio message written while the previous
    one is not yet acknowledged waits for the peer's delayed ACK (up to 40 ms on Linux).
    """
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not a TCP stream after all; nothing to tune
        pass


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a connection cap, header and body deadlines and a header
    cap."""

    tracker: ClassVar[ConnectionTracker]

    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _header_bytes = 0
    _cut = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        reason = self.tracker.admit(transport)
        if reason is not None:
            _refuse(reason)
            self._cut = True
            transport.abort()  # RST: no response, no parsing, the descriptor is freed now
            return
        _disable_nagle(transport)
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        self._stop_body_timer()
        self.tracker.release(self.transport)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._cut:
            return
        super().data_received(data)
        if self._header_timer is not None:  # still inside a request's head after this chunk
            self._header_bytes += len(data)
            if self._header_bytes > self.tracker.limits.max_header_bytes:
                self._cut_off(431, "request headers too large")

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            timeout = self.tracker.limits.header_timeout
            self._header_timer = self.loop.call_later(timeout, self._header_deadline)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        self._cut_off(408, "request header timeout")

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_deadline(self) -> None:
        """The body did not complete in time: 408 if nothing was answered yet, else just close.

        (A route may answer before reading the body, e.g. a webhook refused for its missing
        signature; writing a second status line then would corrupt the connection.) The route
        still reading sees a client disconnect, which the app answers quietly.
        """
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self._cut_off(408, "request body timeout")
            return
        if not self._cut:
            self._cut = True
            _refuse("request body timeout")
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()

    def _cut_off(self, status: int, reason: str) -> None:
        """Answer ``status`` (no body) and close; later parser callbacks become no-ops."""
        if self._cut:
            return
        self._cut = True
        _refuse(reason)
        if self.transport is not None and not self.transport.is_closing():
            phrase = "Request Timeout" if status == 408 else "Request Header Fields Too Large"
            head = f"HTTP/1.1 {status} {phrase}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            self.transport.write(head.encode())
            self.transport.close()

    # Parser callbacks: a new request (re)starts the deadline and the byte count of its head
    # (counted in data_received: httptools buffers a header until it is complete, so counting
    # parsed headers would come too late); complete headers stop both.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._cut:
            self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        self._header_bytes = 0
        if not self._cut:
            super().on_headers_complete()
            if not self.parser.should_upgrade():  # a WebSocket upgrade has no body to wait for
                timeout = self.tracker.limits.body_timeout
                self._body_timer = self.loop.call_later(timeout, self._body_deadline)

    def on_body(self, body: bytes) -> None:
        if not self._cut:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._stop_body_timer()
        if not self._cut:
            super().on_message_complete()


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets (sans-I/O) protocol that counts control frames and cuts off floods.

    Pings and pongs never reach the application, so its flood guard cannot see them; each ping
    also makes uvicorn write a pong, which piles up in memory for a peer that does not read.
    """

    tracker: ClassVar[ConnectionTracker]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.tracker.limits
        self._allowance = float(limits.control_frame_burst)
        self._checked_at = time.monotonic()

    def connection_lost(self, exc: Exception | None) -> None:
        self.tracker.release(self.transport)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn parses a whole read (up to 256 KiB: thousands of tiny frames) before handling
        # any event; in slices, a flood is cut after one slice instead of after the whole read.
        if len(data) <= _SLICE_BYTES:  # the common case (media packets): no copy
            super().data_received(data)
            return
        view = memoryview(data)
        for start in range(0, len(data), _SLICE_BYTES):
            if self.transport.is_closing():
                return
            super().data_received(bytes(view[start : start + _SLICE_BYTES]))

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            # A denial response (e.g. 503 at capacity) ends the handshake; without this uvicorn
            # logs "ASGI callable returned without completing handshake" at ERROR for each one.
            self.handshake_complete = True

    def handle_ping(self) -> None:
        if self._control_frame_allowed():
            super().handle_ping()

    def handle_pong(self, event: Frame) -> None:
        if self._control_frame_allowed():
            super().handle_pong(event)

    def _control_frame_allowed(self) -> bool:
        """Token bucket over control frames; False (and the peer aborted) on a flood."""
        if self.transport.is_closing():
            return False
        limits = self.tracker.limits
        now = time.monotonic()
        self._allowance = min(
            float(limits.control_frame_burst),
            self._allowance + (now - self._checked_at) * limits.control_frames_per_sec,
        )
        self._checked_at = now
        self._allowance -= 1.0
        unread = self.transport.get_write_buffer_size()
        if self._allowance >= 0.0 and unread <= limits.max_unread_bytes:
            return True
        _refuse("control frame flood")
        if self.handshake_complete and not self.close_sent:
            # The app sees the end as a disconnect (1008 policy violation), like any hang-up.
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1008})
        self.close_sent = True
        self.transport.abort()
        return False


def uvicorn_ws_options(
    limits: ConnectionLimits | None = None, *, nofile: int | None = None
) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments for a guarded server (one tracker per server).

    ``nofile`` is the open-file limit the total connection cap must stay below (see
    :func:`raise_nofile_limit`).
    """
    tracker = ConnectionTracker(limits or ConnectionLimits.from_env(), nofile=nofile)
    http = type("RunnerHttpProtocol", (GuardedHttpProtocol,), {"tracker": tracker})
    ws = type("RunnerWebSocketProtocol", (GuardedWebSocketProtocol,), {"tracker": tracker})
    return {
        "http": http,
        "ws": ws,
        "ws_per_message_deflate": False,
        "ws_max_size": WS_MAX_SIZE,
    }
