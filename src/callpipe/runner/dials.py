"""The runner's record of the calls it dialed: matches the provider's stream to the dial.

A dial returns the provider's call id. When the callee answers, the provider fetches the answer
webhook (carrying that id), and the runner mints the stream token; the book remembers which
token (and which call id) belongs to which dial, so when the stream connects, ``runner_args``
gets the dial's metadata (who to greet and why). Matching by token works for every provider,
including those whose stream names the call differently than the webhook (Telnyx TeXML); in
local mode (no tokens) the call id is used.

Status and AMD callbacks update the :class:`CallHandle`, fire listeners (the "events") and
count in the metrics. Records are per process and forgotten after ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from callpipe.metrics.registry import REGISTRY
from callpipe.providers import registry
from callpipe.runner.types import RunnerArguments
from callpipe.telephony.dial.types import AmdResult, CallHandle, DialStatus
from callpipe.transports.call_stats import mask

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


@dataclass(frozen=True, slots=True)
class DialEvent:
    """One thing that happened to a dialed call: ``kind`` is ``status`` or ``amd``."""

    dial_id: str
    provider: str
    kind: str
    value: str


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


class DialBook:
    """Dials placed by this process, indexed by dial id, provider call id and stream token."""

    def __init__(self, *, ttl: float = DEFAULT_TTL_SECS) -> None:
        self.ttl = ttl
        self._by_dial: dict[str, tuple[float, CallHandle]] = {}
        self._by_call: dict[tuple[str, str], str] = {}
        self._by_token: dict[str, str] = {}
        self._listeners: list[DialListener] = []
        self._done: dict[str, asyncio.Event] = {}
        self._connected: set[str] = set()
        self._queues: dict[str, list[asyncio.Queue[DialEvent]]] = {}

    # ------------------------------------------------------------------ records

    def add(self, handle: CallHandle) -> None:
        self._expire()
        self._by_dial[handle.dial_id] = (time.monotonic(), handle)
        self._by_call[(handle.provider, handle.call_id)] = handle.dial_id

    def get(self, dial_id: str) -> CallHandle | None:
        entry = self._by_dial.get(dial_id)
        return entry[1] if entry else None

    @property
    def outstanding(self) -> int:
        """Dials still ringing or being answered: calls that will want a slot (not yet in one)."""
        return sum(
            1
            for dial_id, (_, h) in self._by_dial.items()
            if not h.done and dial_id not in self._connected
        )

    def find(self, provider: str, call_id: str) -> CallHandle | None:
        dial_id = self._by_call.get((provider, call_id))
        return self.get(dial_id) if dial_id else None

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl
        old = [d for d, (t, _) in self._by_dial.items() if t < cutoff]
        for dial_id in old:
            _, handle = self._by_dial.pop(dial_id)
            self._by_call.pop((handle.provider, handle.call_id), None)
            self._done.pop(dial_id, None)
            self._connected.discard(dial_id)
            self._queues.pop(dial_id, None)
        if old:
            gone = set(old)
            self._by_call = {k: v for k, v in self._by_call.items() if v not in gone}
            self._by_token = {k: v for k, v in self._by_token.items() if v not in gone}

    # ------------------------------------------------------------------ answer webhook, stream

    def on_answer(
        self, provider: str, fields: Mapping[str, str], webhook_call_id: str, token: str | None
    ) -> CallHandle | None:
        """The answer webhook of a call we dialed: remember its token and webhook call id."""
        dialer = registry.dialer(provider)
        if dialer is None:
            return None  # we never dial through it
        handle = self.find(provider, dialer.callback_call_id(fields))
        if handle is None:
            return None
        if webhook_call_id:  # Plivo: the webhook's CallUUID is what its stream names
            self._by_call[(provider, webhook_call_id)] = handle.dial_id
        if token:
            self._by_token[token] = handle.dial_id
        return handle

    def for_stream(
        self, provider: str, token: str | None, call_id: str | None
    ) -> CallHandle | None:
        """The dial a connecting stream belongs to (by its token, else its call id)."""
        dial_id = self._by_token.pop(token, None) if token else None
        if dial_id is None and call_id:
            dial_id = self._by_call.get((provider, call_id))
        return self.get(dial_id) if dial_id else None

    def attach(self, args: RunnerArguments, provider: str, token: str | None) -> None:
        """Put a dialed call's metadata into ``args.body`` (``dial`` holds the dial's facts)."""
        call_id = args.call_data.call_id if args.call_data is not None else None
        handle = self.for_stream(provider, token, call_id)
        if handle is None:
            return
        self._connected.add(handle.dial_id)
        _CURRENT.set((self, handle))  # _admit runs in bot()'s task: visible to bot()
        args.body.update(handle.metadata)
        args.body["dial"] = handle.as_dict()
        logger.info("%s stream matched dial %s", provider, handle.dial_id)

    # ------------------------------------------------------------------ callbacks and events

    def add_listener(self, listener: DialListener) -> None:
        self._listeners.append(listener)

    def subscribe(self, dial_id: str) -> asyncio.Queue[DialEvent]:
        """A queue receiving this dial's events from now on (for the bot of that call)."""
        queue: asyncio.Queue[DialEvent] = asyncio.Queue(maxsize=64)
        self._queues.setdefault(dial_id, []).append(queue)
        return queue

    def on_callback(self, provider: str, fields: Mapping[str, Any]) -> CallHandle | None:
        """A verified status/AMD callback: update the handle, count it, fire the events."""
        dialer = registry.dialer(provider)
        call_id = dialer.callback_call_id(fields) if dialer is not None else ""
        handle = self.find(provider, call_id)
        if dialer is None or handle is None:
            logger.info("%s callback for unknown call %s", provider, mask(call_id))
            return None
        status = dialer.callback_status(fields)
        amd = dialer.callback_amd(fields)
        if status is not None:
            self.set_status(handle, status)
        if amd is not None:
            self.set_amd(handle, amd, source="provider")
        return handle

    def set_status(self, handle: CallHandle, status: DialStatus) -> None:
        if handle.done or status == handle.status:
            return
        handle.status = status
        handle.history.append(("status", status))
        DIAL_STATUS.inc(provider=handle.provider, status=status)
        self._emit(DialEvent(handle.dial_id, handle.provider, "status", status))
        if handle.done:
            self._event(handle.dial_id).set()

    def set_amd(self, handle: CallHandle, result: AmdResult, *, source: str) -> None:
        handle.answered_by = result
        handle.history.append(("amd", result))
        AMD_RESULTS.inc(provider=handle.provider, source=source, result=result)
        self._emit(DialEvent(handle.dial_id, handle.provider, "amd", result))

    def _emit(self, event: DialEvent) -> None:
        for queue in self._queues.get(event.dial_id, ()):
            if not queue.full():
                queue.put_nowait(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("dial event listener failed")

    def _event(self, dial_id: str) -> asyncio.Event:
        return self._done.setdefault(dial_id, asyncio.Event())

    async def wait_done(self, dial_id: str) -> CallHandle | None:
        """Wait until the dial reached a terminal status (bound it with ``asyncio.timeout``)."""
        handle = self.get(dial_id)
        if handle is not None and not handle.done:
            await self._event(dial_id).wait()
        return self.get(dial_id)
