"""One HTTP connection pool per event loop, shared by the clients every call makes.

Each call's LLM (and other REST) service has an httpx client of its own, for its own key,
headers and timeouts. With a pool per client, a call's connection to the provider idles between
its turns; a turn that comes more than the keep-alive time after the previous request (5 s in
httpx, and a phone turn is usually longer) opens a new TCP connection and TLS session first:
two to three round trips more before the first token, on every such turn. Pooled per loop, the
calls of a process hand each other warm connections: with a few calls up, a request finds one.

:func:`pooled_transport` gives a client its handle on the loop's pool
(``httpx.AsyncClient(transport=pooled_transport(), ...)``). Requests go through the pool;
closing the client releases the handle, and the pool closes its connections when the last
handle is released. Proxies from the environment still apply (httpx mounts them beside the
given transport).
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

from callpipe.utils.tls import shared_ssl_context

__all__ = ["KEEPALIVE_EXPIRY_SECS", "PooledTransport", "pooled_transport"]

KEEPALIVE_EXPIRY_SECS = 4.0
"""How long an idle connection is kept. Below the 5 s after which uvicorn-served APIs (vLLM and
other OpenAI-compatible servers) close an idle connection: the client's clock starts when it
has read the response, later than the server's, so equal limits race and a request is written
to a socket the server is closing."""

_LIMITS = httpx.Limits(
    max_connections=None,  # one process carries 100+ calls; never queue a turn behind another
    max_keepalive_connections=256,
    keepalive_expiry=KEEPALIVE_EXPIRY_SECS,
)


class _Pool:
    def __init__(self) -> None:
        self.transport = httpx.AsyncHTTPTransport(verify=shared_ssl_context(), limits=_LIMITS)
        self.handles = 0


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()


class PooledTransport(httpx.AsyncBaseTransport):
    """One client's handle on its loop's pool."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: _Pool) -> None:
        self._loop = loop
        self._pool: _Pool | None = pool
        pool.handles += 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._pool
        if pool is None:
            raise httpx.TransportError("the client was closed")
        return await pool.transport.handle_async_request(request)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.handles -= 1
        if pool.handles == 0:
            if _pools.get(self._loop) is pool:
                del _pools[self._loop]
            await pool.transport.aclose()


def pooled_transport() -> httpx.AsyncBaseTransport:
    """A handle on the running loop's pool (a pool of its own outside a running loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return httpx.AsyncHTTPTransport(verify=shared_ssl_context(), limits=_LIMITS)
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool()
    return PooledTransport(loop, pool)
