"""ProviderWebsocket: a provider's streaming socket with one reconnect per drop and keep-alive.

Used by the Deepgram, Cartesia and ElevenLabs services. A rejected handshake (401/403) raises
:class:`~callpipe.services.ai_service.ServiceAuthError` from :meth:`connect`, so the service
reports a clear fatal error at start. A socket that drops mid-call is re-opened once; if that
fails the owner is told through ``on_failed`` and the call carries on without the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from callpipe.processors.base_object import cancel_and_wait, create_logged_task
from callpipe.services.ai_service import ServiceAuthError

logger = logging.getLogger(__name__)

Message = str | bytes


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
        keepalive_message: Callable[[], Message] | None = None,
        open_timeout: float = 5.0,
        reconnect_attempts: int = 1,
        auth_hint: str = "",
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
        self._auth_hint = auth_hint
        self._ws: ClientConnection | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._closing = False
        self._connected = asyncio.Event()
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._connected.is_set()

    async def _open(self) -> ClientConnection:
        try:
            return await connect(
                self.url,
                additional_headers=self._headers,
                open_timeout=self._open_timeout,
                max_size=None,
                ping_interval=20,
                ping_timeout=20,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise ServiceAuthError(
                    f"{self._owner}: the provider rejected the credentials (HTTP {status}). "
                    f"{self._auth_hint}"
                ) from None
            raise ConnectionError(f"{self._owner}: handshake failed with HTTP {status}") from None

    async def connect(self) -> None:
        """Open the socket and start receiving; a failed handshake (other than a rejected key)
        is retried once. Raises on failure (rejected key: ServiceAuthError)."""
        self._closing = False
        try:
            self._ws = await self._open()
        except ServiceAuthError:
            raise
        except (OSError, ConnectionError, TimeoutError) as exc:
            logger.warning("%s: connecting failed (%s); retrying once", self._owner, exc)
            await asyncio.sleep(0.25)
            self._ws = await self._open()
        self._connected.set()
        self._receiver = create_logged_task(self._receive(), f"{self._owner}:ws-receive")
        if self._keepalive_secs and self._keepalive_message is not None:
            self._keepalive = create_logged_task(self._keep_alive(), f"{self._owner}:ws-keepalive")

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
                async with asyncio.timeout(2.0):
                    await ws.close()
            except TimeoutError:
                pass
        await cancel_and_wait(self._receiver)
        self._receiver = None

    async def _receive(self) -> None:
        while True:
            ws = self._ws
            if ws is None:
                return
            try:
                async for message in ws:
                    try:
                        await self._on_message(message)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        logger.exception("%s: failed to handle a provider message", self._owner)
            except ConnectionClosed as exc:
                logger.debug("%s: socket closed: %s", self._owner, exc)
            if self._closing:
                return
            self._connected.clear()
            logger.warning("%s: provider socket dropped; reconnecting", self._owner)
            if not await self._reconnect():
                return

    async def _reconnect(self) -> bool:
        error = "unknown error"
        for attempt in range(self._reconnect_attempts):
            try:
                if attempt:
                    await asyncio.sleep(0.2)
                self._ws = await self._open()
            except (OSError, ConnectionError, ServiceAuthError, TimeoutError) as exc:
                error = str(exc) or type(exc).__name__
                continue
            self.reconnects += 1
            self._connected.set()
            logger.info("%s: reconnected", self._owner)
            if self._on_reconnected is not None:
                await self._on_reconnected()
            return True
        self._ws = None
        message = f"{self._owner}: provider socket dropped and reconnecting failed: {error}"
        if self._on_failed is not None:
            await self._on_failed(message)
        return False

    async def _keep_alive(self) -> None:
        assert self._keepalive_secs and self._keepalive_message is not None
        while True:
            await asyncio.sleep(self._keepalive_secs)
            if self.connected:
                await self.send(self._keepalive_message(), wait_secs=0)


def ws_url(base_url: str, path: str, params: dict[str, Any] | None = None) -> str:
    """``base_url`` + ``path`` + a query string of the non-None ``params``."""
    from urllib.parse import urlencode

    url = base_url.rstrip("/") + path
    query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in (params or {}).items()}
    query = {k: v for k, v in query.items() if v is not None}
    return f"{url}?{urlencode(query)}" if query else url
