"""The fleet-wide dial store in Redis (``pip install 'callpipe[redis]'``).

Keys (all under ``callpipe:``, all expiring): ``dial:<id>`` a hash (provider, call_id, to,
status, answered_by, metadata as JSON, pending, connected), ``dial:<id>:h`` the history list
(``kind:value`` items), ``dialx:<key>`` the index entries. The compound steps (claim an id,
apply a forward-only status, replace a reservation) are Lua scripts, so they are atomic
however many processes race; events go over the ``callpipe:dial-events`` channel.

Every command is bounded by ``timeout`` seconds; a failure raises
:class:`~callpipe.errors.TokenStoreError` (the caller decides how to refuse).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from callpipe.errors import MissingDependencyError, TokenStoreError
from callpipe.runner.dial_store import STATUS_RANK, DialEvent
from callpipe.runner.token_store import KEY_PREFIX
from callpipe.telephony.dial.types import AMD_RESULTS, AmdResult, CallHandle, DialStatus

logger = logging.getLogger(__name__)

T = TypeVar("T")

_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'provider', ARGV[1], 'to', ARGV[2], 'status', 'initiated',
           'call_id', '', 'pending', '1', 'connected', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'pending') == '1' then redis.call('DEL', KEYS[1]) end
return 1
"""

# ARGV: kind, value, ttl ms, then the ranks as name=rank pairs.
_TRANSITION = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'pending') == '1' then return 0 end
if ARGV[1] == 'status' then
  local rank = cjson.decode(ARGV[4])
  local cur = redis.call('HGET', KEYS[1], 'status')
  local rc = rank[cur] or 3
  local rn = rank[ARGV[2]] or 3
  if rc >= 3 or rn <= rc then return 0 end
  redis.call('HSET', KEYS[1], 'status', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'answered_by', ARGV[2])
end
redis.call('RPUSH', KEYS[2], ARGV[1] .. ':' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

CHANNEL = "dial-events"


class RedisDialStore:
    """:class:`~callpipe.runner.dial_store.DialStore` over one Redis (see the module docstring)."""

    def __init__(self, url: str, *, timeout: float = 1.0, prefix: str = KEY_PREFIX) -> None:
        try:
            from redis.asyncio import Redis
        except ImportError as exc:
            raise MissingDependencyError("redis (fleet-wide dial records)", "redis") from exc
        self._url = url
        self._client: Any = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
        self._prefix = prefix
        self._origin = secrets.token_hex(8)
        self._ranks = json.dumps(STATUS_RANK)
        self._reserve = self._client.register_script(_RESERVE)
        self._release = self._client.register_script(_RELEASE)
        self._transition = self._client.register_script(_TRANSITION)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Event | None = None

    def _rec(self, dial_id: str) -> str:
        return f"{self._prefix}dial:{dial_id}"

    def _idx(self, key: str) -> str:
        return f"{self._prefix}dialx:{key}"

    async def _run(self, call: Awaitable[T]) -> T:
        from redis.exceptions import RedisError

        try:
            return await call
        except (RedisError, OSError) as exc:
            raise TokenStoreError(f"dial store unavailable ({type(exc).__name__})") from exc

    # ------------------------------------------------------------------ records

    async def reserve(self, dial_id: str, provider: str, to: str, ttl: float) -> bool:
        keys = [self._rec(dial_id)]
        done = await self._run(self._reserve(keys=keys, args=[provider, to, _ms(ttl)]))
        return bool(done)

    async def release(self, dial_id: str) -> None:
        await self._run(self._release(keys=[self._rec(dial_id)]))

    async def put(self, handle: CallHandle, ttl: float) -> None:
        rec = self._rec(handle.dial_id)
        mapping = {
            "provider": handle.provider,
            "call_id": handle.call_id,
            "to": handle.to,
            "status": handle.status,
            "answered_by": handle.answered_by or "",
            "metadata": json.dumps(dict(handle.metadata)),
            "pending": "0",
            "connected": "0",
        }
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(rec, mapping=mapping)
        pipe.pexpire(rec, _ms(ttl))
        pipe.set(self._idx(f"call:{handle.provider}:{handle.call_id}"), handle.dial_id, px=_ms(ttl))
        await self._run(pipe.execute())

    async def get(self, dial_id: str) -> CallHandle | None:
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self._rec(dial_id))
        pipe.lrange(self._rec(dial_id) + ":h", 0, -1)
        fields, history = await self._run(pipe.execute())
        if not fields:
            return None
        try:
            metadata = json.loads(fields.get("metadata") or "{}")
        except ValueError:
            metadata = {}
        answered = fields.get("answered_by") or None
        pairs = [tuple(item.split(":", 1)) for item in history if ":" in item]
        return CallHandle(
            provider=fields.get("provider", ""),
            call_id=fields.get("call_id", ""),
            dial_id=dial_id,
            to=fields.get("to", ""),
            status=cast(DialStatus, fields.get("status") or "initiated"),
            answered_by=cast(AmdResult, answered) if answered in AMD_RESULTS else None,
            metadata=metadata if isinstance(metadata, dict) else {},
            history=[(k, v) for k, v in pairs],
        )

    async def pending(self, dial_id: str) -> bool:
        value = await self._run(self._client.hget(self._rec(dial_id), "pending"))
        return bool(value == "1")

    async def link(self, key: str, dial_id: str, ttl: float) -> None:
        await self._run(self._client.set(self._idx(key), dial_id, px=_ms(ttl)))

    async def resolve(self, key: str, *, pop: bool = False) -> str | None:
        name = self._idx(key)
        value = await self._run(self._client.getdel(name) if pop else self._client.get(name))
        return str(value) if value else None

    async def transition(self, dial_id: str, kind: str, value: str, ttl: float) -> bool:
        rec = self._rec(dial_id)
        args: list[str | int] = [kind, value, _ms(ttl), self._ranks]
        applied = await self._run(self._transition(keys=[rec, rec + ":h"], args=args))
        return bool(applied)

    async def mark_connected(self, dial_id: str) -> None:
        rec = self._rec(dial_id)
        # Only an existing record (HSET on a missing key would create one without expiry).
        if await self._run(self._client.exists(rec)):
            await self._run(self._client.hset(rec, "connected", "1"))

    async def outstanding(self, dial_ids: list[str]) -> list[str]:
        if not dial_ids:
            return []
        pipe = self._client.pipeline(transaction=False)
        for dial_id in dial_ids:
            pipe.hmget(self._rec(dial_id), "status", "connected")
        rows = await self._run(pipe.execute())
        return [
            dial_id
            for dial_id, (status, connected) in zip(dial_ids, rows, strict=True)
            if status is not None and status in STATUS_RANK and connected != "1"
        ]

    # ------------------------------------------------------------------ events

    async def publish(self, event: DialEvent) -> None:
        message = json.dumps(
            {
                "o": self._origin,
                "d": event.dial_id,
                "p": event.provider,
                "k": event.kind,
                "v": event.value,
            }
        )
        await self._run(self._client.publish(self._prefix + CHANNEL, message))

    async def listen(self, deliver: Callable[[DialEvent], None]) -> None:
        """Subscribe once (the first call waits until the subscription is live)."""
        if self._listener is None:
            self._subscribed = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(deliver), name="dial-events")
        assert self._subscribed is not None
        try:
            await asyncio.wait_for(self._subscribed.wait(), 2.0)
        except TimeoutError:
            raise TokenStoreError("dial store unavailable (no event subscription)") from None

    async def _listen(self, deliver: Callable[[DialEvent], None]) -> None:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        backoff = 0.2
        while True:
            # Its own connection, without a read timeout: it idles between events.
            client: Any = Redis.from_url(self._url, decode_responses=True)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self._prefix + CHANNEL)
                assert self._subscribed is not None
                self._subscribed.set()
                backoff = 0.2
                async for message in pubsub.listen():
                    event = self._event(message)
                    if event is not None:
                        deliver(event)
            except (RedisError, OSError) as exc:
                logger.warning("dial events: subscription lost (%s); retrying", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):  # a broken connection may not close
                    await client.aclose()

    def _event(self, message: Any) -> DialEvent | None:
        if not isinstance(message, dict) or message.get("type") != "message":
            return None
        try:
            data = json.loads(message.get("data") or "")
            if not isinstance(data, dict) or data.get("o") == self._origin:
                return None  # ours: already delivered locally
            return DialEvent(str(data["d"]), str(data["p"]), str(data["k"]), str(data["v"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except (asyncio.CancelledError, Exception):
                pass
            self._listener = None
        try:
            await self._client.aclose()
        except Exception:  # closing a broken connection must not raise out of shutdown
            logger.debug("closing the Redis dial store failed", exc_info=True)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
