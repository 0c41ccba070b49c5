"""The runner's record of the calls it dialed: matches the provider's stream to the dial.

A dial returns the provider's call id. When the callee answers, the provider fetches the answer
webhook (carrying that id), and the runner mints the stream token; the book remembers which
token (and which call id) belongs to which dial, so when the stream connects, ``runner_args``
gets the dial's metadata (who to greet and why). Matching by token works for every provider,
including those whose stream names the call differently than the webhook (Telnyx TeXML); in
local mode (no tokens) the call id is used.

Status and AMD callbacks update the :class:`CallHandle`, fire listeners (the "events") and
count in the metrics. The records live in a :mod:`~callpipe.runner.dial_store`: this process's
(the default) or Redis shared by a fleet (``CALLPIPE_REDIS_URL``), where any process may get the
webhook, a callback or the stream. Listeners and metrics fire in the process that applied the
callback (once per event in the fleet); the bot's :func:`current_dial_events` queue gets the
events of its call from whichever process applied them. Records are forgotten after ``ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from callpipe.errors import TokenStoreError
from callpipe.log import mask
from callpipe.metrics.registry import REGISTRY
from callpipe.providers import registry
from callpipe.runner.dial_store import DialEvent, DialStore, MemoryDialStore
from callpipe.runner.types import RunnerArguments
from callpipe.telephony.dial.types import TERMINAL_STATUSES, AmdResult, CallHandle, DialStatus

logger = logging.getLogger(__name__)

DIALS_PLACED = REGISTRY.counter(
    "callpipe_dial_placed_total", "Outbound dials requested (labels: provider, outcome)."
)
DIAL_STATUS = REGISTRY.counter(
    "callpipe_dial_status_total", "Outbound call status callbacks (labels: provider, status)."
)
AMD_RESULTS = REGISTRY.counter(
    "callpipe_amd_results_total",
    "Answering-machine verdicts (labels: provider, source=provider|local, result).",
)

DEFAULT_TTL_SECS = 4 * 3600.0
TOKEN_LINK_SECS = 600.0
"""How long a minted stream token stays matched to its dial (tokens live seconds)."""
WAIT_POLL_SECS = 1.0
"""``wait_done`` re-reads the record this often (an event lost with a Redis hiccup is caught)."""

__all__ = [
    "AMD_RESULTS",
    "DIALS_PLACED",
    "DIAL_STATUS",
    "DialBook",
    "DialEvent",
    "DialListener",
    "current_dial_events",
]

DialListener = Callable[[DialEvent], None]

_CURRENT: contextvars.ContextVar[tuple[DialBook, CallHandle] | None] = contextvars.ContextVar(
    "callpipe_current_dial", default=None
)


def current_dial_events() -> asyncio.Queue[DialEvent] | None:
    """Inside ``bot()`` of a dialed call: a queue of that call's later status/AMD events.

    None for calls the runner did not dial. Feed provider-native AMD into the pipeline with
    ``VoicemailDetector.provider_verdict(event.value)`` for ``event.kind == "amd"``.
    """
    current = _CURRENT.get()
    if current is None:
        return None
    book, handle = current
    return book.subscribe(handle.dial_id)


def _token_key(token: str) -> str:
    """Index key of a stream token: a digest, so the store never holds a usable token."""
    return "token:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class DialBook:
    """Dials placed through this runner, indexed by dial id, provider call id and stream token.

    Every method touching records is async (the store may be Redis) and raises
    :class:`~callpipe.errors.TokenStoreError` when a shared store is unreachable.
    """

    def __init__(self, *, ttl: float = DEFAULT_TTL_SECS, store: DialStore | None = None) -> None:
        self.ttl = ttl
        self.store: DialStore = store if store is not None else MemoryDialStore()
        self._listeners: list[DialListener] = []
        self._done: dict[str, asyncio.Event] = {}
        self._queues: dict[str, list[asyncio.Queue[DialEvent]]] = {}
        self._placed: dict[str, float] = {}
        """Dials this process placed (or is placing), for its own capacity count."""

    # ------------------------------------------------------------------ records

    async def reserve(self, dial_id: str, provider: str, to: str) -> bool:
        """Claim ``dial_id`` before placing the call; False if any process has it already."""
        if not await self.store.reserve(dial_id, provider, to, self.ttl):
            return False
        self._placed[dial_id] = time.monotonic()
        return True

    async def release(self, dial_id: str) -> None:
        """The call could not be placed: the id may be used again."""
        self._placed.pop(dial_id, None)
        await self.store.release(dial_id)

    async def add(self, handle: CallHandle) -> None:
        """Record a placed call (replacing its reservation, if any)."""
        await self.store.put(handle, self.ttl)
        self._placed.setdefault(handle.dial_id, time.monotonic())

    async def get(self, dial_id: str) -> CallHandle | None:
        return await self.store.get(dial_id)

    async def is_pending(self, dial_id: str) -> bool:
        """Reserved by a request still placing the call."""
        return await self.store.pending(dial_id)

    async def outstanding(self) -> int:
        """Dials of this process still ringing or being answered: calls that will want a slot
        here (not yet in one). Counted against this process's ``--max-calls``."""
        cutoff = time.monotonic() - self.ttl
        self._placed = {d: t for d, t in self._placed.items() if t >= cutoff}
        live = await self.store.outstanding(list(self._placed))
        alive = set(live)
        self._placed = {d: t for d, t in self._placed.items() if d in alive}
        return len(live)

    async def find(self, provider: str, call_id: str) -> CallHandle | None:
        if not call_id:
            return None
        dial_id = await self.store.resolve(f"call:{provider}:{call_id}")
        return await self.get(dial_id) if dial_id else None

    # ------------------------------------------------------------------ answer webhook, stream

    async def on_answer(
        self, provider: str, fields: Mapping[str, str], webhook_call_id: str, token: str | None
    ) -> CallHandle | None:
        """The answer webhook of a call we dialed: remember its token and webhook call id."""
        dialer = registry.dialer(provider)
        if dialer is None:
            return None  # we never dial through it
        handle = await self.find(provider, dialer.callback_call_id(fields))
        if handle is None:
            return None
        if webhook_call_id and webhook_call_id != handle.call_id:
            # Plivo: the webhook's CallUUID is what its stream names.
            await self.store.link(f"call:{provider}:{webhook_call_id}", handle.dial_id, self.ttl)
        if token:
            link_ttl = min(self.ttl, TOKEN_LINK_SECS)
            await self.store.link(_token_key(token), handle.dial_id, link_ttl)
        return handle

    async def for_stream(
        self, provider: str, token: str | None, call_id: str | None
    ) -> CallHandle | None:
        """The dial a connecting stream belongs to (by its token, once; else its call id)."""
        dial_id = await self.store.resolve(_token_key(token), pop=True) if token else None
        if dial_id is None and call_id:
            dial_id = await self.store.resolve(f"call:{provider}:{call_id}")
        return await self.get(dial_id) if dial_id else None

    async def attach(self, args: RunnerArguments, provider: str, token: str | None) -> None:
        """Put a dialed call's metadata into ``args.body`` (``dial`` holds the dial's facts).

        A shared store that cannot be reached costs the metadata, not the call (the callee is
        already on the line): one warning, and ``bot()`` runs without it.
        """
        call_id = args.call_data.call_id if args.call_data is not None else None
        try:
            handle = await self.for_stream(provider, token, call_id)
            if handle is None:
                return
            await self.store.mark_connected(handle.dial_id)
            await self.store.listen(self._deliver)  # its later events, from any process
        except TokenStoreError as exc:
            logger.warning("%s stream: dial records unreachable (%s)", provider, exc)
            return
        self._placed.pop(handle.dial_id, None)
        _CURRENT.set((self, handle))  # _admit runs in bot()'s task: visible to bot()
        args.body.update(handle.metadata)
        args.body["dial"] = handle.as_dict()
        logger.info("%s stream matched dial %s", provider, handle.dial_id)

    # ------------------------------------------------------------------ callbacks and events

    def add_listener(self, listener: DialListener) -> None:
        """``listener(event)`` for each status/AMD change this process applies."""
        self._listeners.append(listener)

    def subscribe(self, dial_id: str) -> asyncio.Queue[DialEvent]:
        """A queue receiving this dial's events from now on (for the bot of that call)."""
        queue: asyncio.Queue[DialEvent] = asyncio.Queue(maxsize=64)
        self._queues.setdefault(dial_id, []).append(queue)
        return queue

    async def on_callback(self, provider: str, fields: Mapping[str, Any]) -> CallHandle | None:
        """A verified status/AMD callback: update the dial, count it, fire the events."""
        dialer = registry.dialer(provider)
        call_id = dialer.callback_call_id(fields) if dialer is not None else ""
        handle = await self.find(provider, call_id)
        if dialer is None or handle is None:
            logger.info("%s callback for unknown call %s", provider, mask(call_id))
            return None
        status = dialer.callback_status(fields)
        amd = dialer.callback_amd(fields)
        if status is not None:
            await self.set_status(handle, status)
        if amd is not None:
            await self.set_amd(handle, amd, source="provider")
        return await self.get(handle.dial_id) or handle

    async def set_status(self, handle: CallHandle, status: DialStatus) -> None:
        """Apply ``status`` if it moves the call forward (atomic in the store)."""
        if not await self.store.transition(handle.dial_id, "status", status, self.ttl):
            return
        DIAL_STATUS.inc(provider=handle.provider, status=status)
        await self._emit(DialEvent(handle.dial_id, handle.provider, "status", status))

    async def set_amd(self, handle: CallHandle, result: AmdResult, *, source: str) -> None:
        if not await self.store.transition(handle.dial_id, "amd", result, self.ttl):
            return
        AMD_RESULTS.inc(provider=handle.provider, source=source, result=result)
        await self._emit(DialEvent(handle.dial_id, handle.provider, "amd", result))

    async def _emit(self, event: DialEvent) -> None:
        self._deliver(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("dial event listener failed")
        try:
            await self.store.publish(event)
        except TokenStoreError as exc:  # the change is stored; only remote queues miss it
            logger.warning("dial event not published: %s", exc)

    def _deliver(self, event: DialEvent) -> None:
        """Into this process's queues (and waiters) of that dial; local or from the fleet."""
        for queue in self._queues.get(event.dial_id, ()):
            if not queue.full():
                queue.put_nowait(event)
        if event.kind == "status":
            waiter = self._done.get(event.dial_id)
            if waiter is not None:
                waiter.set()
            if event.value in TERMINAL_STATUSES:  # nothing follows: forget its queues
                self._queues.pop(event.dial_id, None)
                self._done.pop(event.dial_id, None)

    async def wait_done(self, dial_id: str) -> CallHandle | None:
        """Wait until the dial reached a terminal status (bound it with ``asyncio.timeout``)."""
        await self.store.listen(self._deliver)
        while True:
            handle = await self.get(dial_id)
            if handle is None or handle.done:
                return handle
            waiter = self._done.setdefault(dial_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), WAIT_POLL_SECS)
            waiter.clear()

    async def aclose(self) -> None:
        await self.store.aclose()
