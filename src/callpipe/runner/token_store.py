"""Where one-time stream tokens are remembered: in this process, or fleet-wide in Redis.

Two records keep a token single-use and a webhook from minting more than one stream:

- ``used:<jti>``: set when ``/ws`` redeems a token, kept until the token expires, so the token is
  refused the second time (on any instance when the store is shared).
- ``mint:<digest of provider and call id>``: the token answered to a call's first signed webhook,
  kept for the replay window. A replayed (or retried) webhook gets that same token back, never a
  fresh one, so one captured webhook cannot open a second stream.

Both need one primitive, *set if absent, with expiry*, which Redis does atomically
(``SET key value NX PX ttl``). Without ``CALLPIPE_REDIS_URL`` the records live in a bounded dict
per process, which is enough for one instance; a fleet behind a load balancer needs Redis.
Redis failures fail closed: the caller of :meth:`TokenStore.add_if_absent` sees
:class:`TokenStoreError` and refuses the call rather than admitting it unchecked.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import Any, Protocol

from callpipe.errors import MissingDependencyError, TokenStoreError

logger = logging.getLogger(__name__)

REDIS_URL_ENV = "CALLPIPE_REDIS_URL"
KEY_PREFIX = "callpipe:"
MEMORY_MAX_ENTRIES = 200_000
"""Bound of the in-process store (~60 MB at most); the oldest records go first when full."""


class TokenStore(Protocol):
    """Set-if-absent with expiry; returns the value already stored, or None when it stored ours."""

    async def add_if_absent(self, key: str, value: str, ttl: float) -> str | None: ...

    async def aclose(self) -> None: ...


class MemoryTokenStore:
    """The per-process store: a dict plus an expiry heap, bounded to ``max_entries``.

    ``add_if_absent_sync`` is the same operation without ``await`` (for the synchronous
    ``StreamTokens.redeem`` kept for compatibility); it is thread-safe.
    """

    def __init__(self, *, max_entries: int = MEMORY_MAX_ENTRIES) -> None:
        self._values: dict[str, tuple[str, float]] = {}
        self._expiry: list[tuple[float, str]] = []
        self._max = max_entries
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def _prune(self, now: float) -> None:
        heap = self._expiry
        while heap and (heap[0][0] <= now or len(self._values) >= self._max):
            expires, key = heapq.heappop(heap)
            current = self._values.get(key)
            if current is not None and current[1] == expires:
                del self._values[key]

    def add_if_absent_sync(self, key: str, value: str, ttl: float) -> str | None:
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            current = self._values.get(key)
            if current is not None:
                return current[0]
            expires = now + max(ttl, 0.001)
            self._values[key] = (value, expires)
            heapq.heappush(self._expiry, (expires, key))
            return None

    async def add_if_absent(self, key: str, value: str, ttl: float) -> str | None:
        return self.add_if_absent_sync(key, value, ttl)

    async def aclose(self) -> None:
        return None


class RedisTokenStore:
    """The fleet-wide store: ``SET NX PX`` in Redis (``pip install 'callpipe[redis]'``).

    Every command is bounded by ``timeout`` seconds; any failure raises :class:`TokenStoreError`.
    """

    def __init__(self, url: str, *, timeout: float = 1.0, prefix: str = KEY_PREFIX) -> None:
        try:
            from redis.asyncio import Redis
        except ImportError as exc:
            raise MissingDependencyError("redis (fleet-wide stream tokens)", "redis") from exc
        self._client: Any = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
        )
        self._prefix = prefix

    async def add_if_absent(self, key: str, value: str, ttl: float) -> str | None:
        from redis.exceptions import RedisError

        name = self._prefix + key
        millis = max(1, int(ttl * 1000))
        try:
            if await self._client.set(name, value, nx=True, px=millis):
                return None
            existing = await self._client.get(name)
        except (RedisError, OSError) as exc:
            raise TokenStoreError(f"token store unavailable ({type(exc).__name__})") from exc
        # Expired between SET and GET: the record is gone, which only happens after its
        # lifetime; treat the key as taken (fail closed) with an empty value.
        return "" if existing is None else str(existing)

    async def aclose(self) -> None:
        try:
            await self._client.aclose()
        except Exception:  # closing a broken connection must not raise out of shutdown
            logger.debug("closing the Redis token store failed", exc_info=True)


def token_store_from_url(url: str | None) -> TokenStore:
    """Redis when ``url`` is given (``redis://`` or ``rediss://``), else the in-process store."""
    if url:
        return RedisTokenStore(url)
    return MemoryTokenStore()
