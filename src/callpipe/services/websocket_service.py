"""Provider WebSockets: callpipe's :class:`ProviderWebsocket`, and Pipecat 1.14's
:class:`WebsocketService` mixin for services written against Pipecat's base classes.

:class:`WebsocketService` (with :class:`ReportErrorCallback`) is what a custom Pipecat service
subclasses, through :class:`~callpipe.services.tts_service.WebsocketTTSService` and its kin: it
implements ``_connect_websocket``/``_disconnect_websocket``/``_receive_messages`` and the mixin
runs the receive loop and reconnects (see the class). callpipe's own services use
:class:`ProviderWebsocket`, described below.

:class:`ProviderWebsocket` is used by the Deepgram, Cartesia and ElevenLabs services (among others).

- **Handshake.** A rejected key (HTTP 401/403) raises
  :class:`~callpipe.services.ai_service.ServiceAuthError` from :meth:`connect`; any other refusal
  raises :class:`HandshakeError` carrying the provider's own reason (Deepgram's ``dg-error``
  header, the response body). Only transient refusals (429, 5xx, network errors) are retried.
- **Close frames.** Providers report stream errors in the close frame (Deepgram ``DATA-0000``,
  ``NET-0001``; ElevenLabs policy closes). A drop is reported once, with the code, the reason
  and the call: a WARNING when it is reconnected, else the owner's ``ErrorFrame`` (which the
  pipeline task logs as its one ERROR line). Transient closes (no close frame, 1000/1001 from
  the server, 1011-1014, ``NET-*``) are reconnected with backoff, a bounded number of times per
  drop and per minute; policy, data and auth closes (1002/1003/1007-1010, 3000-4999,
  ``DATA-*``) are not retried: the owner is told through ``on_failed`` and surfaces an
  ``ErrorFrame`` the bot can handle.
- **Finish, then close.** :meth:`ProviderWebsocket.finish` sends a last message (Deepgram's
  ``CloseStream``) and keeps receiving until the provider has answered (a message the
  ``until`` predicate accepts) or closed the socket, or until a timeout; the provider's close
  is then the expected end, not a drop. :meth:`close` closes at once.
- **Connection events.** A socket given a ``listener`` (its service: see
  :class:`ConnectionListener`) tells it when it opened (also after a reconnect), when it
  closed or was dropped (once per opening) and when connecting failed for good (the handshake
  was refused, or reconnecting after a drop gave up), with the error's text: the service's
  Pipecat 1.14 ``on_connected``, ``on_disconnected`` and ``on_connection_error`` events.
  Nothing is told per message.
- **The service's options.** A listener with ``reconnect_on_error = False`` (Pipecat 1.14's
  option, see :class:`~callpipe.services.ai_service.AIService`) has a transient drop reported
  at once instead of reconnected; its ``ws_close_timeout`` (when set) bounds the wait for the
  provider's answer to a close.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
)
from websockets.protocol import State
from websockets.typing import Data

from callpipe.errors import ProtocolError
from callpipe.frames.frames import ErrorFrame
from callpipe.log import call_tag
from callpipe.processors.base_object import cancel_and_wait, create_logged_task
from callpipe.services.ai_service import ServiceAuthError
from callpipe.utils.network import QuickFailureTracker, exponential_backoff_time
from callpipe.utils.tls import shared_websocket_ssl_context

logger = logging.getLogger(__name__)

Message = str | bytes

TRANSIENT_CLOSE_CODES = frozenset({1000, 1001, 1005, 1006, 1011, 1012, 1013, 1014})
"""Closes worth a reconnect: normal/going away, no close frame, server error, restart, overload."""

REASON_HEADERS = ("dg-error", "x-error", "x-error-message", "error")
"""Response headers providers put their handshake refusal reason in (Deepgram: ``dg-error``)."""


class HandshakeError(ProtocolError, ConnectionError):
    """The provider refused the WebSocket upgrade; ``reason`` is its own explanation."""

    def __init__(self, message: str, *, status: int, reason: str, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retryable = retryable


def is_transient_close(code: int | None, reason: str) -> bool:
    """True when a provider close is worth a reconnect (see the module docstring)."""
    upper = reason.upper()
    if upper.startswith("DATA-") or "UNAUTHORI" in upper:
        return False
    if upper.startswith("NET-") or "TIMEOUT" in upper or "TIMED OUT" in upper:
        # An idle timeout (Deepgram NET-0001, ElevenLabs' input timeout, sent as 1008) is not a
        # request the provider refuses: a new socket is fine.
        return True
    return code is None or code in TRANSIENT_CLOSE_CODES


def handshake_reason(exc: InvalidStatus) -> str:
    """The provider's reason for refusing the upgrade: a reason header, else the body."""
    response = exc.response
    for name in REASON_HEADERS:
        value = response.headers.get(name)
        if value:
            return str(value)[:300]
    body = response.body or b""
    from callpipe.services._http import error_message

    return error_message(response.status_code, bytes(body)) if body.strip() else ""


def describe_close(code: int | None, reason: str) -> str:
    return f"code {code if code is not None else 1006}" + (f" ({reason})" if reason else "")


class ConnectionListener(Protocol):
    """Told when a provider socket opens, closes or fails to connect (see the module
    docstring); the speech services implement it (:class:`~callpipe.services.ai_service.
    AIService`). Each call must return promptly: it runs on the socket's own path."""

    reconnect_on_error: bool
    """False: a transient drop is reported, not reconnected."""
    ws_close_timeout: float | None
    """Seconds to wait for the provider's answer to a close (None: 2)."""

    async def socket_connected(self) -> None: ...

    async def socket_disconnected(self) -> None: ...

    async def socket_connection_error(self, error: str) -> None: ...


class ProviderWebsocket:
    """One provider socket (see the module docstring)."""

    def __init__(
        self,
        *,
        owner: str,
        url: str,
        headers: dict[str, str] | None = None,
        on_message: Callable[[Message], Awaitable[None]],
        on_reconnected: Callable[[], Awaitable[None]] | None = None,
        on_failed: Callable[[str], Awaitable[None]] | None = None,
        keepalive_secs: float | None = None,
        keepalive_message: Callable[[], Message | None] | None = None,
        open_timeout: float = 5.0,
        reconnect_attempts: int = 3,
        reconnect_backoff_secs: float = 0.25,
        max_drops_per_minute: int = 5,
        auth_hint: str = "",
        listener: ConnectionListener | None = None,
    ) -> None:
        self._owner = owner
        self.url = url
        self._headers = headers or {}
        self._on_message = on_message
        self._on_reconnected = on_reconnected
        self._on_failed = on_failed
        self._keepalive_secs = keepalive_secs
        self._keepalive_message = keepalive_message
        self._open_timeout = open_timeout
        self._reconnect_attempts = reconnect_attempts
        self._backoff = reconnect_backoff_secs
        self._max_drops = max_drops_per_minute
        self._drops: deque[float] = deque()
        self._auth_hint = auth_hint
        self._ws: ClientConnection | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._closing = False
        self._finishing = False
        self._finish_until: Callable[[Message], bool] | None = None
        self._finished = asyncio.Event()
        self._connected = asyncio.Event()
        self.listener = listener
        """Told of this socket's connection events (settable until it connects)."""
        self._told_open = False
        self.reconnects = 0
        self.last_close: tuple[int | None, str] | None = None
        """Code and reason of the last close the provider sent (None: never dropped)."""

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._connected.is_set()

    async def _open(self) -> ClientConnection:
        try:
            return await connect(
                self.url,
                # One TLS context per process, not one per connection (21 ms of loop CPU each).
                ssl=shared_websocket_ssl_context() if self.url.lower().startswith("wss:") else None,
                additional_headers=self._headers,
                open_timeout=self._open_timeout,
                # No permessage-deflate: compressing 20-100 ms of audio per message costs CPU on
                # every call and saves nothing (PCM and mu-law barely compress).
                compression=None,
                max_size=None,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=self._close_timeout(),
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            reason = handshake_reason(exc)
            said = f": {reason}" if reason else ""
            if status in (401, 403):
                raise ServiceAuthError(
                    f"{self._owner}: the provider rejected the credentials (HTTP {status}{said}). "
                    f"{self._auth_hint}"
                ) from None
            raise HandshakeError(
                f"{self._owner}: handshake failed with HTTP {status}{said}",
                status=status,
                reason=reason,
                retryable=status == 429 or status >= 500,
            ) from None

    @staticmethod
    def _retryable(exc: Exception) -> bool:
        if isinstance(exc, HandshakeError):
            return exc.retryable
        return isinstance(exc, OSError | TimeoutError)

    async def connect(self) -> None:
        """Open the socket and start receiving; a transient handshake failure is retried once.
        Raises on failure (rejected key: ServiceAuthError; other refusals: HandshakeError)."""
        self._closing = self._finishing = False
        self._finished.clear()
        try:
            self._ws = await self._open_with_one_retry()
        except Exception as exc:
            await self._tell_error(str(exc) or type(exc).__name__)
            raise
        self._connected.set()
        self._receiver = create_logged_task(self._receive(), f"{self._owner}:ws-receive")
        if self._keepalive_secs and self._keepalive_message is not None:
            self._keepalive = create_logged_task(self._keep_alive(), f"{self._owner}:ws-keepalive")
        await self._tell_open()

    async def _open_with_one_retry(self) -> ClientConnection:
        try:
            return await self._open()
        except ServiceAuthError:
            raise
        except (OSError, TimeoutError) as exc:
            if not self._retryable(exc):
                raise
            logger.warning(
                "%s%s: connecting failed (%s); retrying once", call_tag(), self._owner, exc
            )
            await asyncio.sleep(self._backoff)
            return await self._open()

    # ------------------------------------------------------------------ connection events

    async def _tell_open(self) -> None:
        if self.listener is not None and not self._told_open:
            self._told_open = True
            await self.listener.socket_connected()

    async def _tell_closed(self) -> None:
        """Once per opening: a close after a drop was already told."""
        if self.listener is not None and self._told_open:
            self._told_open = False
            await self.listener.socket_disconnected()

    async def _tell_error(self, error: str) -> None:
        if self.listener is not None:
            await self.listener.socket_connection_error(error)

    async def send(self, message: Message, *, wait_secs: float = 2.0) -> bool:
        """Send if connected (waiting up to ``wait_secs`` for a reconnect); False if not sent."""
        if not self._connected.is_set() and not self._closing:
            try:
                async with asyncio.timeout(wait_secs):
                    await self._connected.wait()
            except TimeoutError:
                return False
        ws = self._ws
        if ws is None or self._closing:
            return False
        try:
            await ws.send(message)
        except ConnectionClosed:
            return False
        return True

    async def close(self, final_message: Message | None = None) -> None:
        """Close gracefully (sending ``final_message`` first, e.g. a provider CloseStream)."""
        self._closing = True
        self._connected.clear()
        await cancel_and_wait(self._keepalive)
        ws, self._ws = self._ws, None
        if ws is not None:
            if final_message is not None:
                try:
                    async with asyncio.timeout(1.0):
                        await ws.send(final_message)
                except (ConnectionClosed, TimeoutError):
                    pass
            try:
                async with asyncio.timeout(self._close_timeout()):
                    await ws.close()
            except TimeoutError:
                pass
        await cancel_and_wait(self._receiver)
        self._receiver = None
        await self._tell_closed()

    async def finish(
        self,
        message: Message,
        *,
        until: Callable[[Message], bool] | None = None,
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> bool:
        """Send ``message`` (a provider's end-of-stream request), then close once the provider
        has answered it: ``until`` returned True for a message it sent (after ``on_message``
        handled it), or it closed the socket. Everything it sends meanwhile still goes to
        ``on_message``; its close is not a drop (no reconnect, no ``on_failed``). Closes after
        ``timeout`` seconds at the latest. True if the provider answered in time; False if it
        did not, or the socket was not connected (then it is closed at once).
        """
        answered = False
        if self.connected and not self._closing:
            self._finishing = True
            self._finish_until = until
            self._finished.clear()
            await cancel_and_wait(self._keepalive)
            self._keepalive = None
            if await self.send(message, wait_secs=0):
                try:
                    async with asyncio.timeout(timeout):
                        await self._finished.wait()
                    answered = True
                except TimeoutError:
                    logger.debug("%s: no answer to the last message; closing", self._owner)
        await self.close()
        return answered

    async def _receive(self) -> None:
        while True:
            ws = self._ws
            if ws is None:
                return
            try:
                async for message in ws:
                    try:
                        await self._on_message(message)
                        until = self._finish_until
                        if self._finishing and until is not None and until(message):
                            self._finished.set()
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        logger.exception("%s: failed to handle a provider message", self._owner)
            except ConnectionClosed:
                pass
            if self._finishing:
                self._finished.set()  # the provider closed after the last message: expected
                return
            if self._closing:
                return
            self._connected.clear()
            await self._tell_closed()
            code = ws.close_code
            reason = ws.close_reason or ""
            self.last_close = (code, reason)
            closed = f"provider closed the socket: {describe_close(code, reason)}"
            # Not retried: the owner's ErrorFrame is the one log line (the task logs it).
            if not is_transient_close(code, reason):
                await self._give_up(f"{self._owner}: {closed}; not reconnecting")
                return
            if self.listener is not None and not self.listener.reconnect_on_error:
                await self._give_up(f"{self._owner}: {closed}; reconnect_on_error is off")
                return
            if not self._drop_allowed():
                await self._give_up(
                    f"{self._owner}: {closed}; dropping repeatedly "
                    f"({len(self._drops)} drops within a minute), not reconnecting"
                )
                return
            logger.warning("%s%s: %s; reconnecting", call_tag(), self._owner, closed)
            if not await self._reconnect(closed):
                return

    def _close_timeout(self) -> float:
        """The listener's ``ws_close_timeout`` when it set one, else 2 seconds."""
        timeout = None if self.listener is None else self.listener.ws_close_timeout
        return 2.0 if timeout is None else timeout

    def _drop_allowed(self) -> bool:
        now = time.monotonic()
        self._drops.append(now)
        while self._drops and now - self._drops[0] > 60.0:
            self._drops.popleft()
        return len(self._drops) <= self._max_drops

    async def _give_up(self, message: str) -> None:
        self._ws = None
        await self._tell_error(message)
        if self._on_failed is not None:
            await self._on_failed(message)

    async def _reconnect(self, closed: str) -> bool:
        error = "unknown error"
        for attempt in range(self._reconnect_attempts):
            # Back off before every attempt, growing with repeated drops: a provider that
            # keeps closing is not hammered.
            await asyncio.sleep(min(4.0, self._backoff * 2 ** (attempt + len(self._drops) - 1)))
            if self._closing:
                return False
            try:
                self._ws = await self._open()
            except ServiceAuthError as exc:
                error = str(exc)
                break
            except (OSError, TimeoutError) as exc:
                error = str(exc) or type(exc).__name__
                if not self._retryable(exc):
                    break
                continue
            self.reconnects += 1
            self._connected.set()
            logger.info("%s%s: reconnected", call_tag(), self._owner)
            await self._tell_open()
            if self._on_reconnected is not None:
                await self._on_reconnected()
            return True
        await self._give_up(f"{self._owner}: {closed}, and reconnecting failed: {error}")
        return False

    async def _keep_alive(self) -> None:
        assert self._keepalive_secs and self._keepalive_message is not None
        while True:
            await asyncio.sleep(self._keepalive_secs)
            if self.connected:
                message = self._keepalive_message()
                if message is not None:
                    await self.send(message, wait_secs=0)


def ws_url(base_url: str, path: str, params: dict[str, Any] | None = None) -> str:
    """``base_url`` + ``path`` + a query string of the non-None ``params``.

    A list value repeats the key (``keyterm=a&keyterm=b``), as providers expect for multi-valued
    options; booleans are written ``true``/``false``.
    """
    from urllib.parse import urlencode

    url = base_url.rstrip("/") + path
    pairs: list[tuple[str, Any]] = []
    for key, value in (params or {}).items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None:
                pairs.append((key, str(item).lower() if isinstance(item, bool) else item))
    return f"{url}?{urlencode(pairs)}" if pairs else url


# ---------------------------------------------------------------------- Pipecat's mixin

WS_CLOSE_TIMEOUT = 2.0
"""Seconds :meth:`WebsocketService._websocket_connect`'s sockets wait for the peer to answer a
close (Pipecat 1.14's default)."""

WS_SEND_TIMEOUT = 5.0
"""Seconds one send may wait on a peer that stopped reading before the socket is dropped."""

RECONNECT_MIN_WAIT = 0.25
RECONNECT_MAX_WAIT = 4.0
"""callpipe's reconnect backoff when none is given: a call cannot wait Pipecat's 4-10 s."""

QUICK_FAILURE_SECS = 5.0
QUICK_FAILURES_TO_GIVE_UP = 3
"""A socket that dies this soon after opening, this many times in a row, is not reopened."""


class ReportErrorCallback(Protocol):
    """How a :class:`WebsocketService` reports an error: the owning service's ``_report_error``
    (Pipecat 1.14's signature). ``force_treat_as_permanent``: the service cannot work any more
    (it becomes unusable)."""

    async def __call__(self, error: ErrorFrame, force_treat_as_permanent: bool = False) -> None: ...


class _BoundedSendConnection(ClientConnection):
    """A client connection whose sends give up after ``send_timeout`` seconds.

    ``websockets`` waits for as long as the peer does not read (until TCP notices, minutes
    later). Here a stalled send drops the connection and raises ``ConnectionClosedError``, as
    any lost connection does, so the sender's and the receive loop's handling take over."""

    send_timeout: float | None = None

    async def send(
        self,
        message: Data | Iterable[Data] | AsyncIterable[Data],
        text: bool | None = None,
    ) -> None:
        limit = self.send_timeout
        if limit is None:
            await super().send(message, text)
            return
        try:
            async with asyncio.timeout(limit):
                await super().send(message, text)
        except TimeoutError:
            logger.warning(
                "%sa websocket send waited %.1f s on a peer that stopped reading; dropping it",
                call_tag(),
                limit,
            )
            self.transport.abort()
            raise ConnectionClosedError(None, None) from None


class WebsocketService(ABC):
    """Pipecat 1.14's mixin for a service that owns one provider WebSocket.

    What a subclass written for Pipecat implements and calls, as there:

    - it implements :meth:`_connect_websocket` (open ``self._websocket``, usually with
      :meth:`_websocket_connect`), :meth:`_disconnect_websocket` and :meth:`_receive_messages`
      (read ``self._websocket`` until it closes);
    - its ``_connect``/``_disconnect`` call ``super()._connect()``/``super()._disconnect()``
      first (they clear and set the flag that tells a drop from a wanted close), then open or
      close the socket and start or cancel the receive task, which runs
      :meth:`_receive_task_handler` with the service's error callback.

    :meth:`_receive_task_handler` reconnects a socket the provider dropped or closed
    (:meth:`_maybe_try_reconnect`, :meth:`_try_reconnect`), unless the service is closing it,
    ``reconnect_on_error`` is False (the drop is reported instead) or the socket keeps dying
    within seconds of opening (three times in a row: reported as permanent, since retrying a
    rejected key or configuration cannot help). A clean close (code 1000 raised as
    ``ConnectionClosedOK``) ends the loop without reconnecting.

    Differences from Pipecat: the backoff between reconnect attempts is callpipe's (0.25 s,
    doubling, at most 4 s) unless ``reconnect_backoff_min_wait``/``max_wait`` are given;
    :meth:`_websocket_connect` turns permessage-deflate off (compressing audio costs CPU and
    saves nothing) and uses the process's shared TLS context for ``wss://`` unless told
    otherwise; :meth:`_verify_connection` waits for the pong, not just the ping.
    """

    def __init__(
        self,
        *,
        reconnect_backoff_min_wait: float | None = None,
        reconnect_backoff_max_wait: float | None = None,
        reconnect_on_error: bool = True,
        ws_close_timeout: float | None = None,
        ws_send_timeout: float | None = WS_SEND_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        """Options as Pipecat 1.14's (``kwargs``: the service's own, unused here).
        ``ws_close_timeout`` None: 2 s; ``ws_send_timeout`` None: sends wait for ever."""
        self._websocket: ClientConnection | None = None
        self._reconnect_backoff_min_wait = (
            RECONNECT_MIN_WAIT if reconnect_backoff_min_wait is None else reconnect_backoff_min_wait
        )
        self._reconnect_backoff_max_wait = (
            RECONNECT_MAX_WAIT if reconnect_backoff_max_wait is None else reconnect_backoff_max_wait
        )
        self._reconnect_on_error = reconnect_on_error
        self._ws_close_timeout = WS_CLOSE_TIMEOUT if ws_close_timeout is None else ws_close_timeout
        self._ws_send_timeout = ws_send_timeout
        self._reconnect_in_progress = False
        self._disconnecting = False
        self._quick_failures = QuickFailureTracker(QUICK_FAILURE_SECS, QUICK_FAILURES_TO_GIVE_UP)
        self._last_connect_time = 0.0

    @property
    def _is_service_usable(self) -> bool:
        """Whether the service can still be given work (``is_usable`` of its processor)."""
        from callpipe.processors.frame_processor import FrameProcessor

        return self.is_usable if isinstance(self, FrameProcessor) else True

    # ------------------------------------------------------------------ the subclass's part

    @abstractmethod
    async def _connect_websocket(self) -> None:
        """Open ``self._websocket`` (the socket only, no other setup)."""

    @abstractmethod
    async def _disconnect_websocket(self) -> None:
        """Close ``self._websocket`` (the socket only)."""

    @abstractmethod
    async def _receive_messages(self) -> None:
        """Read and handle the socket's messages until it closes (``async for`` over it)."""

    # ------------------------------------------------------------------ connecting

    async def _connect(self) -> None:
        """Start of a wanted connection: a drop is reconnected again from now on."""
        self._disconnecting = False
        self._quick_failures.reset()

    async def _disconnect(self) -> None:
        """Start of a wanted close: the receive loop ends without reconnecting."""
        self._disconnecting = True

    async def _websocket_connect(self, uri: str, **kwargs: Any) -> ClientConnection:
        """Open a socket to ``uri`` (``kwargs``: ``websockets``' ``connect`` options, e.g.
        ``additional_headers``) with the service's close and send timeouts."""
        kwargs.setdefault("close_timeout", self._ws_close_timeout)
        kwargs.setdefault("create_connection", _BoundedSendConnection)
        kwargs.setdefault("compression", None)
        if uri.lower().startswith("wss:"):
            kwargs.setdefault("ssl", shared_websocket_ssl_context())
        websocket = await connect(uri, **kwargs)
        if isinstance(websocket, _BoundedSendConnection):
            websocket.send_timeout = self._ws_send_timeout
        return websocket

    async def _verify_connection(self) -> bool:
        """True if the socket is open and answers a ping."""
        websocket = self._websocket
        if websocket is None or websocket.state is State.CLOSED:
            return False
        try:
            pong = await websocket.ping()
            async with asyncio.timeout(self._ws_close_timeout + 3.0):
                await pong
        except Exception as exc:
            logger.warning("%s%s: the new socket does not answer: %s", call_tag(), self, exc)
            return False
        return True

    async def _reconnect_websocket(self, attempt_number: int) -> bool:
        """Close and reopen the socket; raises ConnectionError if the new one does not answer."""
        logger.info("%s%s: reconnecting (attempt %d)", call_tag(), self, attempt_number)
        await self._disconnect_websocket()
        await self._connect_websocket()
        if not await self._verify_connection():
            raise ConnectionError(f"{self}: the reconnected socket does not answer")
        return True

    def _backoff(self, attempt: int) -> float:
        low = self._reconnect_backoff_min_wait
        return exponential_backoff_time(attempt, low, self._reconnect_backoff_max_wait, low)

    async def _try_reconnect(
        self, max_retries: int = 3, report_error: ReportErrorCallback | None = None
    ) -> bool:
        """Reconnect, up to ``max_retries`` attempts with backoff between them. A failed attempt
        is a warning; once all have failed, one error is reported as permanent (the service
        becomes unusable), as callpipe's own sockets report a provider that stays away."""
        if self._reconnect_in_progress:
            logger.debug("%s: a reconnect is already under way", self)
            return False
        if not self._is_service_usable:
            logger.warning("%s%s: not reconnecting: the service is unusable", call_tag(), self)
            return False
        self._reconnect_in_progress = True
        last: Exception | None = None
        try:
            for attempt in range(1, max_retries + 1):
                try:
                    if await self._reconnect_websocket(attempt):
                        self._last_connect_time = time.monotonic()
                        logger.info("%s%s: reconnected", call_tag(), self)
                        return True
                except Exception as exc:
                    last = exc
                    # A provider blip, not yet an error: one ErrorFrame if all attempts fail.
                    logger.warning(
                        "%s%s: reconnect attempt %d failed: %s", call_tag(), self, attempt, exc
                    )
                if not self._is_service_usable:
                    return False
                await asyncio.sleep(self._backoff(attempt))
            message = f"{self}: could not reconnect after {max_retries} attempts"
            if last is not None:
                message += f": {last}"
            if report_error is not None:
                await report_error(
                    ErrorFrame(error=message, exception=last), force_treat_as_permanent=True
                )
            else:
                logger.warning("%s%s", call_tag(), message)
            return False
        finally:
            self._reconnect_in_progress = False

    async def _maybe_try_reconnect(
        self,
        error_message: str,
        report_error: ReportErrorCallback,
        error: Exception | None = None,
    ) -> bool:
        """The socket dropped or closed: reconnect if wanted and sensible. True when the
        receive loop should go on (reconnected)."""
        if self._disconnecting:
            return False
        if self._last_connect_time > 0:
            lasted = time.monotonic() - self._last_connect_time
            if self._quick_failures.record(lasted).should_give_up:
                message = (
                    f"{self}: the provider closed the socket right after opening it "
                    f"{self._quick_failures.count} times in a row; not reconnecting"
                )
                await report_error(ErrorFrame(error=message), force_treat_as_permanent=True)
                return False
        if not self._reconnect_on_error:
            await report_error(ErrorFrame(error=error_message, exception=error))
            return False
        logger.warning("%s%s; reconnecting", call_tag(), error_message)
        return await self._try_reconnect(report_error=report_error)

    async def _receive_task_handler(self, report_error: ReportErrorCallback) -> None:
        """The receive task: :meth:`_receive_messages`, reconnecting as the class docstring
        says."""
        while True:
            self._last_connect_time = time.monotonic()
            error: Exception | None = None
            try:
                await self._receive_messages()
                message = f"{self}: the provider closed the socket"
            except ConnectionClosedOK:
                logger.debug("%s: the socket closed normally", self)
                return
            except ConnectionClosedError as exc:
                error = exc
                message = f"{self}: the socket dropped: {exc}"
            except Exception as exc:
                error = exc
                message = f"{self}: receiving failed: {exc}"
            if not await self._maybe_try_reconnect(message, report_error, error):
                return

    async def send_with_retry(self, message: Message, report_error: ReportErrorCallback) -> None:
        """Send ``message``, reconnecting once if that fails (deprecated in Pipecat 1.14: send
        on ``self._websocket`` and leave reconnecting to the receive loop)."""
        warnings.warn(
            "WebsocketService.send_with_retry is deprecated (Pipecat 1.14); send on the "
            "websocket directly",
            DeprecationWarning,
            stacklevel=2,
        )
        try:
            if self._websocket is None:
                raise ConnectionError(f"{self}: no socket")
            await self._websocket.send(message)
        except Exception as exc:
            logger.warning("%s%s: send failed (%s); reconnecting", call_tag(), self, exc)
            if await self._try_reconnect(report_error=report_error) and self._websocket:
                await self._websocket.send(message)
