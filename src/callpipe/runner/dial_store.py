"""Where the runner's dial records live: in this process, or fleet-wide in Redis.

A dial is placed by one process, but behind a load balancer (or with ``--workers N``) the
provider's answer webhook, its status callbacks and the media stream may each reach another
one. With ``CALLPIPE_REDIS_URL`` (or ``--redis-url``) every process reads and writes the same
records, so any of them answers ``GET /calls/{id}``, applies a callback, and hands the dial's
metadata to ``bot()`` when the stream lands on it. Without it the records stay in a dict of this
process (one instance, or sticky routing).

What a store keeps, each with an expiry (the book's ``ttl``, 4 hours by default):

- the record of a dial (provider, call id, callee, status, AMD verdict, metadata) and its
  history of ``(kind, value)`` pairs;
- index entries ``call:<provider>:<call id>`` and ``token:<digest>`` naming the dial a provider
  call id or a stream token belongs to (a token is stored only as a digest).

Operations that must not race are single atomic steps: :meth:`DialStore.reserve` claims a dial
id (so two processes given the same id never both place the call), :meth:`DialStore.transition`
applies a status only if it moves the call forward (``initiated < ringing < answered <
terminal``; a terminal status is final), and :meth:`DialStore.resolve` with ``pop`` hands a
token's dial to exactly one stream. Events of a transition are published to the fleet
(:meth:`DialStore.publish`) so the bot's event queue works whichever process got the callback.
A store that cannot reach Redis raises :class:`~callpipe.errors.TokenStoreError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from callpipe.telephony.dial.types import TERMINAL_STATUSES, AmdResult, CallHandle, DialStatus

STATUS_RANK: dict[str, int] = {"initiated": 0, "ringing": 1, "answered": 2}
"""Progress order of the non-terminal statuses; every terminal status ranks above them."""


def status_rank(status: str) -> int:
    return STATUS_RANK.get(status, 3)


def moves_forward(current: str, new: str) -> bool:
    """Whether ``new`` advances a call at ``current`` (late or repeated callbacks do not)."""
    return current not in TERMINAL_STATUSES and status_rank(new) > status_rank(current)


@dataclass(frozen=True, slots=True)
class DialEvent:
    """One thing that happened to a dialed call: ``kind`` is ``status`` or ``amd``."""

    dial_id: str
    provider: str
    kind: str
    value: str


class DialStore(Protocol):
    """The records of :class:`~callpipe.runner.dials.DialBook` (see the module docstring)."""

    async def reserve(self, dial_id: str, provider: str, to: str, ttl: float) -> bool:
        """Claim ``dial_id`` with a pending record; False if it exists already (anywhere)."""
        ...

    async def release(self, dial_id: str) -> None:
        """Drop a still-pending reservation (the dial could not be placed)."""
        ...

    async def put(self, handle: CallHandle, ttl: float) -> None:
        """Store the placed dial (replacing its reservation) and index its call id."""
        ...

    async def get(self, dial_id: str) -> CallHandle | None: ...

    async def pending(self, dial_id: str) -> bool:
        """Reserved, not yet placed."""
        ...

    async def link(self, key: str, dial_id: str, ttl: float) -> None:
        """Index ``key`` (``call:...`` or ``token:...``) to ``dial_id``."""
        ...

    async def resolve(self, key: str, *, pop: bool = False) -> str | None:
        """The dial ``key`` names; ``pop`` removes the entry atomically (single use)."""
        ...

    async def transition(self, dial_id: str, kind: str, value: str, ttl: float) -> bool:
        """Apply a ``status`` (if it moves forward) or an ``amd`` verdict; True if applied."""
        ...

    async def mark_connected(self, dial_id: str) -> None:
        """Its stream reached a bot (it no longer waits for a call slot)."""
        ...

    async def outstanding(self, dial_ids: list[str]) -> list[str]:
        """Those of ``dial_ids`` still pending, ringing or answering (not connected, not done)."""
        ...

    async def publish(self, event: DialEvent) -> None:
        """Tell the other processes (no-op for a store of one process)."""
        ...

    async def listen(self, deliver: Callable[[DialEvent], None]) -> None:
        """From now on, call ``deliver`` with the events other processes publish."""
        ...

    async def aclose(self) -> None: ...


class MemoryDialStore:
    """The per-process store: the handles themselves in dicts, expired lazily."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[float, CallHandle]] = {}
        self._pending: set[str] = set()
        self._connected: set[str] = set()
        self._index: dict[str, tuple[float, str]] = {}

    def _expire(self) -> None:
        now = time.monotonic()
        for dial_id in [d for d, (exp, _) in self._records.items() if exp <= now]:
            del self._records[dial_id]
            self._pending.discard(dial_id)
            self._connected.discard(dial_id)
        for key in [k for k, (exp, _) in self._index.items() if exp <= now]:
            del self._index[key]

    async def reserve(self, dial_id: str, provider: str, to: str, ttl: float) -> bool:
        self._expire()
        if dial_id in self._records:
            return False
        self._records[dial_id] = (time.monotonic() + ttl, CallHandle(provider, "", dial_id, to))
        self._pending.add(dial_id)
        return True

    async def release(self, dial_id: str) -> None:
        if dial_id in self._pending:
            self._pending.discard(dial_id)
            self._records.pop(dial_id, None)

    async def put(self, handle: CallHandle, ttl: float) -> None:
        self._expire()
        expires = time.monotonic() + ttl
        self._records[handle.dial_id] = (expires, handle)
        self._pending.discard(handle.dial_id)
        self._index[f"call:{handle.provider}:{handle.call_id}"] = (expires, handle.dial_id)

    async def get(self, dial_id: str) -> CallHandle | None:
        entry = self._records.get(dial_id)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    async def pending(self, dial_id: str) -> bool:
        return dial_id in self._pending

    async def link(self, key: str, dial_id: str, ttl: float) -> None:
        self._index[key] = (time.monotonic() + ttl, dial_id)

    async def resolve(self, key: str, *, pop: bool = False) -> str | None:
        entry = self._index.pop(key, None) if pop else self._index.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    async def transition(self, dial_id: str, kind: str, value: str, ttl: float) -> bool:
        handle = await self.get(dial_id)
        if handle is None or dial_id in self._pending:
            return False
        if kind == "status":
            if not moves_forward(handle.status, value):
                return False
            handle.status = _status(value)
        else:
            handle.answered_by = _amd(value)
        handle.history.append((kind, value))
        return True

    async def mark_connected(self, dial_id: str) -> None:
        self._connected.add(dial_id)

    async def outstanding(self, dial_ids: list[str]) -> list[str]:
        out = []
        for dial_id in dial_ids:
            handle = await self.get(dial_id)
            if handle is not None and not handle.done and dial_id not in self._connected:
                out.append(dial_id)
        return out

    async def publish(self, event: DialEvent) -> None:
        return None

    async def listen(self, deliver: Callable[[DialEvent], None]) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _status(value: str) -> DialStatus:
    # The callers pass only values from the shared vocabulary (the dialers normalise them).
    return cast(DialStatus, value)


def _amd(value: str) -> AmdResult:
    return cast(AmdResult, value)


def dial_store_from_url(url: str | None) -> DialStore:
    """Redis when ``url`` is given (``redis://`` or ``rediss://``), else the in-process store."""
    if url:
        from callpipe.runner.dial_store_redis import RedisDialStore

        return RedisDialStore(url)
    return MemoryDialStore()
