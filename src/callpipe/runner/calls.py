"""Active calls of this process: capacity, readiness and graceful drain.

Nothing here is shared between processes, and nothing needs to be: each call lives entirely on
the one process whose ``/ws`` accepted it, so workers and instances scale out independently.

Drain (SIGTERM): readiness goes false and new calls are refused; every active call gets its
``drain_requested`` event; calls are given ``drain_timeout`` seconds to finish on their own. The
rest are then ended gracefully: an ``EndFrame`` is queued on the ``PipelineTask`` a bot attached
(``runner_args.attach(task)``), so the transport plays out what was queued and hangs up; for a
call without an attached task the provider's REST hang-up is used (when the serializer has call
control) and the socket is closed. After ``end_grace`` more seconds any leftover socket is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from callpipe.frames.frames import EndFrame
from callpipe.metrics.registry import REGISTRY
from callpipe.runner.types import RunnerArguments, WebSocketRunnerArguments

logger = logging.getLogger(__name__)

CALLS_STARTED = REGISTRY.counter(
    "callpipe_runner_calls_started_total", "Calls that reached bot() (labels: provider)."
)
CALLS_ENDED = REGISTRY.counter(
    "callpipe_runner_calls_ended_total", "Calls whose bot() returned (labels: provider, outcome)."
)
CALLS_REFUSED = REGISTRY.counter(
    "callpipe_runner_calls_refused_total",
    "Webhooks or streams refused (labels: stage, reason).",
)
CALL_DURATION = REGISTRY.histogram(
    "callpipe_runner_call_duration_seconds",
    "Duration of bot() per call.",
    buckets=(5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
)
HANDSHAKE_SECONDS = REGISTRY.histogram(
    "callpipe_runner_handshake_seconds",
    "WebSocket accepted -> provider start message parsed.",
)


@dataclass
class ActiveCall:
    runner_args: RunnerArguments
    provider: str
    started: float = field(default_factory=time.monotonic)


class CallRegistry:
    """Slots for concurrent calls (``max_calls``), and the drain state machine."""

    def __init__(
        self,
        *,
        max_calls: int | None = None,
        max_pending: int | None = None,
        max_pending_per_address: int = 8,
        max_pending_authenticated: int | None = None,
    ) -> None:
        self.max_calls = max_calls
        self.max_pending = max_pending or (max(16, 2 * max_calls) if max_calls else 256)
        """Handshakes of connections that presented no token before the upgrade."""
        self.max_pending_per_address = max_pending_per_address
        """Of those, from one client address (when the caller passes one)."""
        self.max_pending_authenticated = max_pending_authenticated or (
            max(64, 4 * max_calls) if max_calls else 1024
        )
        """Handshakes of connections whose token was valid before the upgrade: a separate pool,
        so unauthenticated peers cannot take the room genuine calls need."""
        self._pending = 0
        self._pending_authenticated = 0
        self._pending_by_address: dict[str, int] = {}
        self._reserved = 0
        self._calls: dict[int, ActiveCall] = {}
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        return self._reserved

    @property
    def at_capacity(self) -> bool:
        return self.max_calls is not None and self._reserved >= self.max_calls

    def refusal_reason(self) -> str | None:
        """Why a new call would be refused now, or None if it can be taken."""
        if self.draining:
            return "draining"
        if self.at_capacity:
            return "at capacity"
        return None

    def begin_handshake(
        self, address: str | None = None, *, authenticated: bool = False
    ) -> str | None:
        """Count a connection that is not yet a call; the reason to refuse it, or None.

        ``address`` (the client's, for unauthenticated connections) applies the per-address cap.
        Every successful call must be paired with ``end_handshake`` with the same arguments.
        """
        if authenticated:
            if self._pending_authenticated >= self.max_pending_authenticated:
                return "busy handshaking"
            self._pending_authenticated += 1
            return None
        if self._pending >= self.max_pending:
            return "busy handshaking"
        if address is not None:
            count = self._pending_by_address.get(address, 0)
            if count >= self.max_pending_per_address:
                return "too many handshakes from one address"
            self._pending_by_address[address] = count + 1
        self._pending += 1
        return None

    def end_handshake(self, address: str | None = None, *, authenticated: bool = False) -> None:
        if authenticated:
            self._pending_authenticated = max(0, self._pending_authenticated - 1)
            return
        self._pending = max(0, self._pending - 1)
        if address is not None:
            left = self._pending_by_address.get(address, 0) - 1
            if left > 0:
                self._pending_by_address[address] = left
            else:
                self._pending_by_address.pop(address, None)

    def reserve(self) -> bool:
        """Take a slot synchronously (no await between check and take)."""
        if self.refusal_reason() is not None:
            return False
        self._reserved += 1
        self._idle.clear()
        return True

    def release(self) -> None:
        self._reserved = max(0, self._reserved - 1)
        if self._reserved == 0:
            self._idle.set()

    def register(self, call: ActiveCall) -> None:
        self._calls[id(call.runner_args)] = call
        CALLS_STARTED.inc(provider=call.provider)
        if self.draining:
            call.runner_args.drain_requested.set()

    def unregister(self, call: ActiveCall, outcome: str) -> None:
        self._calls.pop(id(call.runner_args), None)
        CALLS_ENDED.inc(provider=call.provider, outcome=outcome)
        CALL_DURATION.observe(time.monotonic() - call.started)

    def calls(self) -> list[ActiveCall]:
        return list(self._calls.values())

    async def wait_idle(self, within: float) -> bool:
        """True if every call ended within ``within`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    async def drain(self, drain_timeout: float, end_grace: float = 10.0) -> None:
        """Stop taking calls, let active ones finish, then end the rest gracefully."""
        self.draining = True
        calls = self.calls()
        logger.info("draining: %d active call(s), up to %.0fs", len(calls), drain_timeout)
        for call in calls:
            call.runner_args.drain_requested.set()
        if await self.wait_idle(drain_timeout):
            logger.info("drained: all calls finished")
            return
        remaining = self.calls()
        logger.warning("drain timeout: ending %d call(s) with EndFrame", len(remaining))
        for call in remaining:
            await _end_call(call.runner_args)
        if await self.wait_idle(end_grace):
            return
        for call in self.calls():
            if isinstance(call.runner_args, WebSocketRunnerArguments):
                with contextlib.suppress(Exception):
                    await call.runner_args.websocket.close(code=1001, reason="server shutting down")
        await self.wait_idle(2.0)


async def _end_call(args: RunnerArguments) -> None:
    task = args.task
    if task is not None and not task.has_finished():
        await task.queue_frame(EndFrame(reason="server draining"))
        return
    serializer = args._serializer
    control = serializer.call_control if serializer is not None else None
    if control is not None:
        try:
            await asyncio.wait_for(control.hang_up(), 10.0)
        except Exception as exc:
            logger.warning("drain: hang-up failed: %s", exc)
    if isinstance(args, WebSocketRunnerArguments):
        with contextlib.suppress(Exception):
            await args.websocket.close(code=1001, reason="server shutting down")
